import { app } from '@azure/functions';

import { settleSyncError } from '../shared/coupling/actions';
import { endpoint, json, OPERATORS } from '../shared/http/endpoint';
import { accountParams, synchronizeBodySchema } from '../shared/http/schemas';
import { actionAnswerSchema } from '../shared/http/views';

const syncErrorSynchronize = endpoint({
  name: 'sync-error-synchronize',
  method: 'POST',
  route: 'sync-errors/{account}/synchronize',
  summary:
    'Synchronize a record modified in both apps: the chosen version’s values of every differing field win, if ' +
    'neither app changed since the error (else 409 SYNC_ERROR_CHANGED and the error is refreshed) (Sync.Operator)',
  access: OPERATORS,
  request: { params: accountParams, body: synchronizeBodySchema },
  responses: { 202: { description: 'Synchronized (crm: the HQ operation is Pending)', schema: actionAnswerSchema } },
  problems: [404, 409],
  handle: async ({ params, body, principal, ctx }) =>
    json(202, await settleSyncError(ctx, params.account, { action: 'Synchronize', ...body }, principal.subject)),
});
app.http(syncErrorSynchronize.name, syncErrorSynchronize.trigger);
