import { app } from '@azure/functions';

import { endpoint, json, OPERATORS } from '../shared/http/endpoint';
import { idempotencyOf } from '../shared/http/request';
import { accountParams, idempotencyHeaders } from '../shared/http/schemas';
import { acceptedSchema } from '../shared/http/views';
import { submitDelete } from '../shared/operations/submit';

const customerDelete = endpoint({
  name: 'customer-delete',
  method: 'DELETE',
  route: 'customers/{account}',
  summary:
    'Delete an HQ customer by either account: a Delete operation, applied behind its earlier operations (Sync.Operator)',
  access: OPERATORS,
  request: { params: accountParams, headers: idempotencyHeaders },
  responses: { 202: { description: 'Accepted', schema: acceptedSchema } },
  problems: [404, 422],
  handle: async ({ params, headers, principal, ctx }) => {
    const accepted = await submitDelete(ctx, {
      account: params.account,
      by: principal.subject,
      // The request has no body: its key stands for "delete this customer", whichever account names it.
      idempotency: idempotencyOf(headers['idempotency-key'], 'DELETE'),
    });
    return json(202, accepted, { Location: `/api/operations/${accepted.operationId}` });
  },
});
app.http(customerDelete.name, customerDelete.trigger);
