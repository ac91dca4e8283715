import { app } from '@azure/functions';

import { settleSyncError } from '../shared/coupling/actions';
import { endpoint, json, OPERATORS } from '../shared/http/endpoint';
import { accountParams } from '../shared/http/schemas';
import { actionAnswerSchema } from '../shared/http/views';

const syncErrorRetry = endpoint({
  name: 'sync-error-retry',
  method: 'POST',
  route: 'sync-errors/{account}/retry',
  summary: 'Retry: clear the record’s error and skipped flag; the next crm-sync run takes it again (Sync.Operator)',
  access: OPERATORS,
  request: { params: accountParams },
  responses: { 202: { description: 'Taken again by the next run', schema: actionAnswerSchema } },
  problems: [404, 409],
  handle: async ({ params, principal, ctx }) =>
    json(202, await settleSyncError(ctx, params.account, { action: 'Retry' }, principal.subject)),
});
app.http(syncErrorRetry.name, syncErrorRetry.trigger);
