import { app } from '@azure/functions';

import { endpoint, json, READERS } from '../shared/http/endpoint';
import { jobRunsSchema } from '../shared/http/views';
import { listJobRuns } from '../shared/jobs';

const jobRuns = endpoint({
  name: 'jobs-list',
  method: 'GET',
  route: 'jobs',
  summary: 'Runs of the scheduled jobs, newest first (Sync.Reader)',
  access: READERS,
  request: {},
  responses: { 200: { description: 'Runs', schema: jobRunsSchema } },
  handle: async ({ ctx }) => json(200, { items: await listJobRuns(ctx) }),
});
app.http(jobRuns.name, jobRuns.trigger);
