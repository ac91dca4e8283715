import { app } from '@azure/functions';

import { settleSyncError } from '../shared/coupling/actions';
import { endpoint, json, OPERATORS } from '../shared/http/endpoint';
import { accountParams } from '../shared/http/schemas';
import { actionAnswerSchema } from '../shared/http/views';

const syncErrorRestore = endpoint({
  name: 'sync-error-restore',
  method: 'POST',
  route: 'sync-errors/{account}/restore',
  summary:
    'Restore records: recreate the deleted side from the other and keep them coupled; a CRM row now, an HQ ' +
    'customer through an operation from the channel crm (Sync.Operator)',
  access: OPERATORS,
  request: { params: accountParams },
  responses: { 202: { description: 'Restored (HQ: the operation is Pending)', schema: actionAnswerSchema } },
  problems: [404, 409],
  handle: async ({ params, principal, ctx }) =>
    json(202, await settleSyncError(ctx, params.account, { action: 'Restore' }, principal.subject)),
});
app.http(syncErrorRestore.name, syncErrorRestore.trigger);
