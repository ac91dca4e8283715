import { app } from '@azure/functions';

import { requireRole } from '../shared/http/auth';
import { authenticated, json } from '../shared/http/endpoint';
import { getCustomer } from '../shared/operations/queries';

app.http('customer-get', {
  methods: ['GET'],
  route: 'customers/{account}',
  authLevel: 'anonymous',
  handler: authenticated(async ({ request, principal, ctx }) => {
    requireRole(principal, 'Sync.Reader', 'Sync.Operator');
    const customer = await getCustomer(ctx, request.params.account ?? '');
    return json(200, customer, { ETag: `W/"${customer.version}"` });
  }),
});
