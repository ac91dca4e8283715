import { app } from '@azure/functions';

import { setAlertRule } from '../shared/alerts/rules';
import { endpoint, json, OPERATORS } from '../shared/http/endpoint';
import { alertRuleBodySchema, alertRuleParams } from '../shared/http/schemas';
import { alertRuleSchema } from '../shared/http/views';

const alertRuleSet = endpoint({
  name: 'alert-rule-set',
  method: 'PUT',
  route: 'alert-rules/{name}',
  summary: 'Create an alert rule or change it; a firing rule stays firing until the next run decides (Sync.Operator)',
  access: OPERATORS,
  request: { params: alertRuleParams, body: alertRuleBodySchema },
  responses: { 200: { description: 'The rule', schema: alertRuleSchema } },
  handle: async ({ params, body, ctx }) => json(200, await setAlertRule(ctx, { name: params.name, ...body })),
});
app.http(alertRuleSet.name, alertRuleSet.trigger);
