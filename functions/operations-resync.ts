import { app } from '@azure/functions';

import { requireRole } from '../shared/http/auth';
import { authenticated, json } from '../shared/http/endpoint';
import { readJson } from '../shared/http/request';
import { bulkResyncSchema } from '../shared/http/schemas';
import { toFilter } from '../shared/operations/filter';
import { resyncMany } from '../shared/operations/repair';

app.http('operations-resync', {
  methods: ['POST'],
  route: 'operations/sync',
  authLevel: 'anonymous',
  handler: authenticated(async ({ request, principal, ctx }) => {
    requireRole(principal, 'Sync.Operator');
    const body = await readJson(request, bulkResyncSchema);
    const selection = 'operationIds' in body ? body : { filter: toFilter(body.filter) };
    return json(202, await resyncMany(ctx, selection, principal.subject));
  }),
});
