import { app } from '@azure/functions';

import { removeAlertRule } from '../shared/alerts/rules';
import { endpoint, OPERATORS } from '../shared/http/endpoint';
import { alertRuleParams } from '../shared/http/schemas';

const alertRuleRemove = endpoint({
  name: 'alert-rule-remove',
  method: 'DELETE',
  route: 'alert-rules/{name}',
  summary: 'Delete an alert rule; its open alert, if any, is resolved first (Sync.Operator)',
  access: OPERATORS,
  request: { params: alertRuleParams },
  responses: { 204: { description: 'Deleted' } },
  problems: [404],
  handle: async ({ params, ctx }) => {
    await removeAlertRule(ctx, params.name);
    return { status: 204 };
  },
});
app.http(alertRuleRemove.name, alertRuleRemove.trigger);
