import { app } from '@azure/functions';

import { getCoupling } from '../shared/coupling/couplings';
import { endpoint, json, READERS } from '../shared/http/endpoint';
import { accountParams } from '../shared/http/schemas';
import { couplingSchema } from '../shared/http/views';

const couplingGet = endpoint({
  name: 'coupling-get',
  method: 'GET',
  route: 'couplings/{account}',
  summary: "A customer's coupling with its CRM row, by either account (Sync.Reader)",
  access: READERS,
  request: { params: accountParams },
  responses: { 200: { description: 'The coupling', schema: couplingSchema } },
  problems: [404],
  handle: async ({ params, ctx }) => json(200, await getCoupling(ctx, params.account)),
});
app.http(couplingGet.name, couplingGet.trigger);
