import { app } from '@azure/functions';

import { syncLogPage } from '../shared/coupling/couplings';
import { endpoint, json, READERS } from '../shared/http/endpoint';
import { accountParams, syncLogQuerySchema } from '../shared/http/schemas';
import { syncLogSchema } from '../shared/http/views';

const customerSyncLog = endpoint({
  name: 'customer-sync-log',
  method: 'GET',
  route: 'customers/{account}/sync-log',
  summary: "A customer's synchronization log with the CRM, newest first (Sync.Reader)",
  access: READERS,
  request: { params: accountParams, query: syncLogQuerySchema },
  responses: { 200: { description: 'A page of log lines', schema: syncLogSchema } },
  problems: [404],
  handle: async ({ params, query, ctx }) =>
    json(200, await syncLogPage(ctx, params.account, query.top, query.continuationToken)),
});
app.http(customerSyncLog.name, customerSyncLog.trigger);
