import { app } from '@azure/functions';

import { customerSchema } from '../shared/domain/customer';
import { requireChannel } from '../shared/http/auth';
import { authenticated, json } from '../shared/http/endpoint';
import { idempotencyOf, readJson, validate } from '../shared/http/request';
import { channelIdSchema } from '../shared/http/schemas';
import { submitCreate } from '../shared/operations/submit';

app.http('channel-customers-create', {
  methods: ['POST'],
  route: 'channels/{channelId}/customers',
  authLevel: 'anonymous',
  handler: authenticated(async ({ request, principal, ctx }) => {
    const channel = validate(channelIdSchema, request.params.channelId, 'Invalid channel id.');
    requireChannel(principal, channel);
    const customer = await readJson(request, customerSchema);
    const accepted = await submitCreate(ctx, {
      channel,
      customer,
      by: principal.subject,
      idempotency: idempotencyOf(request, customer),
    });
    return json(202, accepted, { Location: `/api/operations/${accepted.operationId}` });
  }),
});
