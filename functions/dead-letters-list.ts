import { app } from '@azure/functions';

import { endpoint, json, READERS } from '../shared/http/endpoint';
import { deadLettersQuerySchema } from '../shared/http/schemas';
import { deadLettersSchema } from '../shared/http/views';
import { listDeadLetters } from '../shared/operations/queries';

const deadLetters = endpoint({
  name: 'dead-letters-list',
  method: 'GET',
  route: 'dead-letters',
  summary:
    'Queue messages refused as not a doorbell, newest first, with the reason; completed at once, never retried (Sync.Reader)',
  access: READERS,
  request: { query: deadLettersQuerySchema },
  responses: { 200: { description: 'Dead letters', schema: deadLettersSchema } },
  handle: async ({ query, ctx }) => json(200, { items: await listDeadLetters(ctx, query.top) }),
});
app.http(deadLetters.name, deadLetters.trigger);
