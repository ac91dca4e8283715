import { app } from '@azure/functions';

import { requireRole } from '../shared/http/auth';
import { authenticated, json } from '../shared/http/endpoint';
import { validate } from '../shared/http/request';
import { jobNameSchema } from '../shared/http/schemas';
import { runJob } from '../shared/jobs';

app.http('job-run', {
  methods: ['POST'],
  route: 'jobs/{job}/run',
  authLevel: 'anonymous',
  handler: authenticated(async ({ request, principal, ctx }) => {
    requireRole(principal, 'Sync.Operator');
    const job = validate(jobNameSchema, request.params.job, 'Invalid job name.');
    return json(200, await runJob(ctx, job));
  }),
});
