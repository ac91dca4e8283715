import { app } from '@azure/functions';

import { setCoupling } from '../shared/coupling/couplings';
import { endpoint, json, OPERATORS } from '../shared/http/endpoint';
import { accountParams, couplingBodySchema } from '../shared/http/schemas';
import { couplingSchema } from '../shared/http/views';

const couplingSet = endpoint({
  name: 'coupling-set',
  method: 'PUT',
  route: 'couplings/{account}',
  summary: 'Couple a customer with a CRM row by hand, and synchronize them (Sync.Operator)',
  access: OPERATORS,
  request: { params: accountParams, body: couplingBodySchema },
  responses: { 200: { description: 'The coupling', schema: couplingSchema } },
  problems: [404, 409],
  handle: async ({ params, body, principal, ctx }) =>
    json(200, await setCoupling(ctx, params.account, body, principal.subject)),
});
app.http(couplingSet.name, couplingSet.trigger);
