import { app } from '@azure/functions';

import { settleSyncError } from '../shared/coupling/actions';
import { endpoint, json, OPERATORS } from '../shared/http/endpoint';
import { accountParams } from '../shared/http/schemas';
import { actionAnswerSchema } from '../shared/http/views';

const syncErrorDelete = endpoint({
  name: 'sync-error-delete',
  method: 'POST',
  route: 'sync-errors/{account}/delete',
  summary:
    'Delete records: delete the side that still exists and remove the coupling; an HQ customer through an ' +
    'operation from the channel crm (Sync.Operator)',
  access: OPERATORS,
  request: { params: accountParams },
  responses: { 202: { description: 'Deleted (HQ: the operation is Pending)', schema: actionAnswerSchema } },
  problems: [404, 409],
  handle: async ({ params, principal, ctx }) =>
    json(202, await settleSyncError(ctx, params.account, { action: 'Delete' }, principal.subject)),
});
app.http(syncErrorDelete.name, syncErrorDelete.trigger);
