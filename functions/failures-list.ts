import { app } from '@azure/functions';

import { endpoint, json, READERS } from '../shared/http/endpoint';
import { failuresSchema } from '../shared/http/views';
import { listFailures } from '../shared/operations/repair';

const failures = endpoint({
  name: 'failures-list',
  method: 'GET',
  route: 'failures',
  summary: 'Failed operations grouped by error code (Sync.Reader)',
  access: READERS,
  request: {},
  responses: { 200: { description: 'Groups', schema: failuresSchema } },
  handle: async ({ ctx }) => json(200, { items: await listFailures(ctx) }),
});
app.http(failures.name, failures.trigger);
