import { app } from '@azure/functions';

import { syncErrorsPage } from '../shared/coupling/couplings';
import { endpoint, json, READERS } from '../shared/http/endpoint';
import { syncErrorsQuerySchema } from '../shared/http/schemas';
import { syncErrorsSchema } from '../shared/http/views';

const syncErrorsList = endpoint({
  name: 'sync-errors-list',
  method: 'GET',
  route: 'sync-errors',
  summary: 'Coupled records that could not be synchronized, newest first, with the actions that fit (Sync.Reader)',
  access: READERS,
  request: { query: syncErrorsQuerySchema },
  responses: { 200: { description: 'A page of sync errors', schema: syncErrorsSchema } },
  handle: async ({ query, ctx }) =>
    json(200, await syncErrorsPage(ctx, query.kind, query.top, query.continuationToken)),
});
app.http(syncErrorsList.name, syncErrorsList.trigger);
