import { app } from '@azure/functions';

import { requireRole } from '../shared/http/auth';
import { authenticated, json } from '../shared/http/endpoint';
import { listJobRuns } from '../shared/jobs';

app.http('jobs-list', {
  methods: ['GET'],
  route: 'jobs',
  authLevel: 'anonymous',
  handler: authenticated(async ({ principal, ctx }) => {
    requireRole(principal, 'Sync.Reader', 'Sync.Operator');
    return json(200, { items: await listJobRuns(ctx) });
  }),
});
