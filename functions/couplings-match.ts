import { app } from '@azure/functions';

import { endpoint, json, OPERATORS } from '../shared/http/endpoint';
import { matchBodySchema } from '../shared/http/schemas';
import { matchAcceptedSchema } from '../shared/http/views';
import { runMatch } from '../shared/jobs';

const couplingsMatch = endpoint({
  name: 'couplings-match',
  method: 'POST',
  route: 'couplings/match',
  summary: 'Couple uncoupled customers with the CRM rows that match them; runs as job crm-match (Sync.Operator)',
  access: OPERATORS,
  request: { body: matchBodySchema },
  responses: { 202: { description: 'The run is recorded in GET /api/jobs', schema: matchAcceptedSchema } },
  problems: [409],
  handle: async ({ body, ctx }) => {
    await runMatch(ctx, body);
    return json(202, { job: 'crm-match' });
  },
});
app.http(couplingsMatch.name, couplingsMatch.trigger);
