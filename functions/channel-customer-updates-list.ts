import { app } from '@azure/functions';

import { CHANNELS, endpoint, json } from '../shared/http/endpoint';
import { channelParams, feedQuerySchema } from '../shared/http/schemas';
import { customerUpdatesSchema } from '../shared/http/views';
import { readCustomerUpdates } from '../shared/operations/queries';

const customerUpdates = endpoint({
  name: 'channel-customer-updates-list',
  method: 'GET',
  route: 'channels/{channelId}/customer-updates',
  summary: 'The channel’s feed of HQ customer changes, oldest first (role Channel)',
  access: CHANNELS,
  request: { params: channelParams, query: feedQuerySchema },
  responses: { 200: { description: 'A page of changes', schema: customerUpdatesSchema } },
  handle: async ({ query, ctx }) => json(200, await readCustomerUpdates(ctx, query.cursor)),
});
app.http(customerUpdates.name, customerUpdates.trigger);
