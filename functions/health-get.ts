import { app } from '@azure/functions';

import { anonymous, json } from '../shared/http/endpoint';
import { problem } from '../shared/http/problem';
import { checkHealth } from '../shared/operations/health';

app.http('health-get', {
  methods: ['GET'],
  route: 'health',
  authLevel: 'anonymous',
  handler: anonymous(async ({ ctx }) => {
    const health = await checkHealth(ctx);
    if (health.status === 'ok') return json(200, health);
    const down = Object.entries(health)
      .filter(([k, v]) => k !== 'status' && v !== 'ok')
      .map(([k]) => k);
    return problem('SERVICE_UNAVAILABLE', `Not answering: ${down.join(', ')}.`, undefined, { 'Retry-After': '5' });
  }),
});
