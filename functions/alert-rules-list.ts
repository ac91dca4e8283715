import { app } from '@azure/functions';

import { listAlertRules } from '../shared/alerts/rules';
import { endpoint, json, READERS } from '../shared/http/endpoint';
import { alertRulesSchema } from '../shared/http/views';

const alertRulesList = endpoint({
  name: 'alert-rules-list',
  method: 'GET',
  route: 'alert-rules',
  summary: 'The alert rules, by name, with whether each is firing (Sync.Reader)',
  access: READERS,
  request: {},
  responses: { 200: { description: 'The rules', schema: alertRulesSchema } },
  handle: async ({ ctx }) => json(200, await listAlertRules(ctx)),
});
app.http(alertRulesList.name, alertRulesList.trigger);
