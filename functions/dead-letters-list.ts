import { app } from '@azure/functions';

import { requireRole } from '../shared/http/auth';
import { authenticated, json } from '../shared/http/endpoint';
import { readQuery } from '../shared/http/request';
import { deadLettersQuerySchema } from '../shared/http/schemas';

app.http('dead-letters-list', {
  methods: ['GET'],
  route: 'dead-letters',
  authLevel: 'anonymous',
  handler: authenticated(async ({ request, principal, ctx }) => {
    requireRole(principal, 'Sync.Reader', 'Sync.Operator');
    const { top } = readQuery(request, deadLettersQuerySchema);
    await ctx.store.tables.ensureCreated();
    return json(200, { items: await ctx.store.deadLetters.latest(top) });
  }),
});
