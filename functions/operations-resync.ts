import { app } from '@azure/functions';

import { endpoint, json, OPERATORS } from '../shared/http/endpoint';
import { bulkResyncSchema } from '../shared/http/schemas';
import { bulkResultSchema } from '../shared/http/views';
import { toFilter } from '../shared/operations/filter';
import { resyncMany } from '../shared/operations/repair';

const operationsResync = endpoint({
  name: 'operations-resync',
  method: 'POST',
  route: 'operations/sync',
  summary: 'Resync many operations, by ids or by filter (Sync.Operator)',
  access: OPERATORS,
  request: { body: bulkResyncSchema },
  responses: { 202: { description: 'What was accepted and skipped', schema: bulkResultSchema } },
  handle: async ({ body, principal, ctx }) => {
    const selection = 'operationIds' in body ? body : { filter: toFilter(body.filter) };
    return json(202, await resyncMany(ctx, selection, principal.subject));
  },
});
app.http(operationsResync.name, operationsResync.trigger);
