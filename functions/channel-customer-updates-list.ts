import { app } from '@azure/functions';

import { requireChannel } from '../shared/http/auth';
import { authenticated, json } from '../shared/http/endpoint';
import { readQuery, validate } from '../shared/http/request';
import { channelIdSchema, feedQuerySchema } from '../shared/http/schemas';
import { readCustomerUpdates } from '../shared/operations/queries';

app.http('channel-customer-updates-list', {
  methods: ['GET'],
  route: 'channels/{channelId}/customer-updates',
  authLevel: 'anonymous',
  handler: authenticated(async ({ request, principal, ctx }) => {
    const channel = validate(channelIdSchema, request.params.channelId, 'Invalid channel id.');
    requireChannel(principal, channel);
    const { cursor } = readQuery(request, feedQuerySchema);
    return json(200, await readCustomerUpdates(ctx, cursor));
  }),
});
