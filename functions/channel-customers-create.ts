import { createHash } from 'node:crypto';

import { app } from '@azure/functions';

import { customerSchema } from '../shared/domain/customer';
import { requireChannel } from '../shared/http/auth';
import { authenticated, json } from '../shared/http/endpoint';
import { readJson, validate } from '../shared/http/request';
import { channelIdSchema, idempotencyKeySchema } from '../shared/http/schemas';
import { submitCreate } from '../shared/operations/submit';

app.http('channel-customers-create', {
  methods: ['POST'],
  route: 'channels/{channelId}/customers',
  authLevel: 'anonymous',
  handler: authenticated(async ({ request, principal, ctx }) => {
    const channel = validate(channelIdSchema, request.params.channelId, 'Invalid channel id.');
    requireChannel(principal, channel);
    const key = request.headers.get('idempotency-key');
    const idempotencyKey = key === null ? undefined : validate(idempotencyKeySchema, key, 'Invalid Idempotency-Key.');
    const customer = await readJson(request, customerSchema);
    const accepted = await submitCreate(ctx, {
      channel,
      customer,
      by: principal.subject,
      idempotency:
        idempotencyKey === undefined
          ? undefined
          : {
              key: idempotencyKey,
              requestHash: createHash('sha256').update(JSON.stringify(customer)).digest('base64url'),
            },
    });
    return json(202, accepted, { Location: `/api/operations/${accepted.operationId}` });
  }),
});
