import { app } from '@azure/functions';

import { anonymous, json } from '../shared/http/endpoint';
import { checkHealth } from '../shared/operations/health';

app.http('health-get', {
  methods: ['GET'],
  route: 'health',
  authLevel: 'anonymous',
  handler: anonymous(async ({ ctx }) => {
    const health = await checkHealth(ctx);
    return json(health.status === 'ok' ? 200 : 503, health);
  }),
});
