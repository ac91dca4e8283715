import { app } from '@azure/functions';

import { endpoint, json, READERS } from '../shared/http/endpoint';
import { accountParams } from '../shared/http/schemas';
import { hqCustomerSchema } from '../shared/http/views';
import { getCustomer } from '../shared/operations/queries';

const customerGet = endpoint({
  name: 'customer-get',
  method: 'GET',
  route: 'customers/{account}',
  summary: 'The HQ customer by either account (Sync.Reader)',
  access: READERS,
  request: { params: accountParams },
  responses: { 200: { description: 'The customer', schema: hqCustomerSchema } },
  problems: [404],
  handle: async ({ params, ctx }) => {
    const customer = await getCustomer(ctx, params.account);
    return json(200, customer, { ETag: `W/"${customer.version}"` });
  },
});
app.http(customerGet.name, customerGet.trigger);
