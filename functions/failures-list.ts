import { app } from '@azure/functions';

import { requireRole } from '../shared/http/auth';
import { authenticated, json } from '../shared/http/endpoint';
import { listFailures } from '../shared/operations/repair';
import { toSummary } from '../shared/operations/views';

app.http('failures-list', {
  methods: ['GET'],
  route: 'failures',
  authLevel: 'anonymous',
  handler: authenticated(async ({ principal, ctx }) => {
    requireRole(principal, 'Sync.Reader', 'Sync.Operator');
    const groups = await listFailures(ctx);
    return json(200, {
      items: groups.map((g) => ({
        code: g.code,
        count: g.count,
        channels: g.channels,
        ...(g.example ? { example: toSummary(g.example) } : {}),
      })),
    });
  }),
});
