import { app } from '@azure/functions';

import { customerSchema } from '../shared/domain/customer';
import { CHANNELS, endpoint, json } from '../shared/http/endpoint';
import { idempotencyOf } from '../shared/http/request';
import { channelParams, idempotencyHeaders } from '../shared/http/schemas';
import { acceptedSchema } from '../shared/http/views';
import { submitCreate } from '../shared/operations/submit';

const createCustomer = endpoint({
  name: 'channel-customers-create',
  method: 'POST',
  route: 'channels/{channelId}/customers',
  summary: 'Create a customer asynchronously (role Channel)',
  access: CHANNELS,
  request: { params: channelParams, headers: idempotencyHeaders, body: customerSchema },
  responses: { 202: { description: 'Accepted', schema: acceptedSchema } },
  problems: [422],
  handle: async ({ params, headers, body, principal, ctx }) => {
    const accepted = await submitCreate(ctx, {
      channel: params.channelId,
      customer: body,
      by: principal.subject,
      idempotency: idempotencyOf(headers['idempotency-key'], body),
    });
    return json(202, accepted, { Location: `/api/operations/${accepted.operationId}` });
  },
});
app.http(createCustomer.name, createCustomer.trigger);
