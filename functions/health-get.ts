import { app } from '@azure/functions';

import { services } from '../shared/app';
import { DomainError } from '../shared/domain/errors';
import { endpoint, json } from '../shared/http/endpoint';
import { problemOf } from '../shared/http/problem';
import { healthSchema } from '../shared/http/views';
import { checkHealth } from '../shared/operations/health';

const health = endpoint({
  name: 'health-get',
  method: 'GET',
  route: 'health',
  summary: 'Health of storage and the broker (no token)',
  access: 'anonymous',
  request: {},
  responses: { 200: { description: 'Healthy', schema: healthSchema } },
  problems: [503],
  handle: async () => {
    const { context, doorbell, log } = services();
    const storage = async () => (await context()).store.ping();
    const health = await checkHealth({ storage, broker: () => doorbell.check() }, log);
    if (health.status === 'ok') return json(200, health);
    const down = Object.entries(health)
      .filter(([k, v]) => k !== 'status' && v !== 'ok')
      .map(([k]) => k);
    return problemOf(new DomainError('SERVICE_UNAVAILABLE', `Not answering: ${down.join(', ')}.`));
  },
});
app.http(health.name, health.trigger);
