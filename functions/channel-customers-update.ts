import { app } from '@azure/functions';

import { customerPatchSchema } from '../shared/domain/customer';
import { DomainError } from '../shared/domain/errors';
import { requireChannel } from '../shared/http/auth';
import { authenticated, json } from '../shared/http/endpoint';
import { idempotencyOf, readJson, validate } from '../shared/http/request';
import { accountSchema, channelIdSchema } from '../shared/http/schemas';
import { submitEdit } from '../shared/operations/submit';

app.http('channel-customers-update', {
  methods: ['PATCH'],
  route: 'channels/{channelId}/customers/{account}',
  authLevel: 'anonymous',
  handler: authenticated(async ({ request, principal, ctx }) => {
    const channel = validate(channelIdSchema, request.params.channelId, 'Invalid channel id.');
    requireChannel(principal, channel);
    const account = request.params.account ?? '';
    if (!accountSchema.safeParse(account).success) {
      throw new DomainError('CUSTOMER_NOT_FOUND', `No customer has the account '${account}'.`);
    }
    const patch = await readJson(request, customerPatchSchema);
    const accepted = await submitEdit(ctx, {
      channel,
      account,
      patch,
      by: principal.subject,
      idempotency: idempotencyOf(request, patch),
    });
    return json(202, accepted, { Location: `/api/operations/${accepted.operationId}` });
  }),
});
