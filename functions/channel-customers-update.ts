import { app } from '@azure/functions';

import { customerPatchSchema } from '../shared/domain/customer';
import { CHANNELS, endpoint, json } from '../shared/http/endpoint';
import { idempotencyOf } from '../shared/http/request';
import { channelCustomerParams, idempotencyHeaders } from '../shared/http/schemas';
import { acceptedSchema } from '../shared/http/views';
import { submitEdit } from '../shared/operations/submit';

const editCustomer = endpoint({
  name: 'channel-customers-update',
  method: 'PATCH',
  route: 'channels/{channelId}/customers/{account}',
  summary: 'Edit a customer (changed fields only; null removes) (role Channel)',
  access: CHANNELS,
  request: { params: channelCustomerParams, headers: idempotencyHeaders, body: customerPatchSchema },
  responses: { 202: { description: 'Accepted', schema: acceptedSchema } },
  problems: [404, 422],
  handle: async ({ params, headers, body, principal, ctx }) => {
    const accepted = await submitEdit(ctx, {
      channel: params.channelId,
      account: params.account,
      patch: body,
      by: principal.subject,
      idempotency: idempotencyOf(headers['idempotency-key'], body),
    });
    return json(202, accepted, { Location: `/api/operations/${accepted.operationId}` });
  },
});
app.http(editCustomer.name, editCustomer.trigger);
