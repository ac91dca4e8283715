import { app } from '@azure/functions';

import { alertsPage } from '../shared/alerts/rules';
import { endpoint, json, READERS } from '../shared/http/endpoint';
import { alertsQuerySchema } from '../shared/http/schemas';
import { alertsSchema } from '../shared/http/views';

const alertsList = endpoint({
  name: 'alerts-list',
  method: 'GET',
  route: 'alerts',
  summary: 'Alerts, newest first: when each rule fired and resolved, and its webhook deliveries (Sync.Reader)',
  access: READERS,
  request: { query: alertsQuerySchema },
  responses: { 200: { description: 'A page of alerts', schema: alertsSchema } },
  handle: async ({ query, ctx }) => json(200, await alertsPage(ctx, query.top, query.continuationToken)),
});
app.http(alertsList.name, alertsList.trigger);
