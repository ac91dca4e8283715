import { app } from '@azure/functions';

import { endpoint, json, OPERATORS } from '../shared/http/endpoint';
import { jobParams } from '../shared/http/schemas';
import { jobRunSchema } from '../shared/http/views';
import { runJob } from '../shared/jobs';

const jobRun = endpoint({
  name: 'job-run',
  method: 'POST',
  route: 'jobs/{job}/run',
  summary: 'Run a job now (Sync.Operator)',
  access: OPERATORS,
  request: { params: jobParams },
  responses: { 200: { description: 'The run', schema: jobRunSchema } },
  problems: [404],
  handle: async ({ params, ctx }) => json(200, await runJob(ctx, params.job)),
});
app.http(jobRun.name, jobRun.trigger);
