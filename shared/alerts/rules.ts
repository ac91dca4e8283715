import { z } from 'zod';

import { alertId, type AlertRule, type AlertRuleDefinition, webhookProblem } from '../domain/alerts';
import { DomainError, notFound } from '../domain/errors';
import { isWriteConflict } from '../domain/versioned';
import type { SyncContext } from '../operations/context';
import { finish, withResolution } from './state';

/** A rule as the API shows it: its definition, and its open alert while it is firing. */
export function ruleView(rule: AlertRule) {
  const { open, ...definition } = rule;
  return { ...definition, firing: open !== undefined, ...(open ? { firedAt: open.firedAt } : {}) };
}

/**
 * Creates a rule or changes its definition (PUT). A rule that is firing stays firing: the next run resolves it
 * if its metric is below the new threshold, and its resolution goes to the webhook the rule names then.
 */
export async function setAlertRule(ctx: SyncContext, definition: AlertRuleDefinition) {
  if (definition.webhookUrl !== undefined) {
    const problem = webhookProblem(definition.webhookUrl, ctx.alerts.webhooks);
    if (problem) {
      throw new DomainError('VALIDATION_FAILED', `The webhook URL is not allowed: it ${problem}.`, {
        webhookUrl: [problem],
      });
    }
  }
  return ruleView(await ctx.store.alerts.putRule(definition, ctx.clock()));
}

export async function listAlertRules(ctx: SyncContext) {
  const rules = await ctx.store.alerts.rules();
  return { items: rules.map((r) => ruleView(r.value)).sort((a, b) => a.name.localeCompare(b.name)) };
}

/**
 * Deletes a rule. A rule that is firing is resolved first (reason `RuleDeleted`, its webhook told), so no alert
 * stays open without a rule to resolve it. The resolution is recorded on the rule before the rule goes: if the
 * request dies in between, the next alerts run finishes the resolution and a repeated DELETE removes the rule.
 */
export async function removeAlertRule(ctx: SyncContext, name: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const stored = await ctx.store.alerts.getRule(name);
    if (!stored) throw notFound('Alert rule', name);
    try {
      let { value: rule, etag } = stored;
      if (rule.open) {
        if (!rule.open.resolution) {
          rule = withResolution(rule, { resolvedAt: ctx.clock().toISOString(), reason: 'RuleDeleted' });
          etag = await ctx.store.alerts.saveRule(rule, etag);
        }
        ({ etag } = await finish(ctx, rule, etag));
      }
      await ctx.store.alerts.deleteRule(name, etag);
      return;
    } catch (error) {
      // The alerts job (or another operator) changed the rule meanwhile: read it again.
      if (!isWriteConflict(error) || attempt >= 5) throw error;
    }
  }
}

const tokenSchema = z.strictObject({ after: z.string().max(512) });

/** A page of alerts, newest first (GET /api/alerts). */
export async function alertsPage(ctx: SyncContext, top: number, continuationToken?: string) {
  let after: string | undefined;
  if (continuationToken !== undefined) {
    try {
      after = tokenSchema.parse(JSON.parse(Buffer.from(continuationToken, 'base64url').toString('utf8'))).after;
    } catch {
      throw new DomainError('VALIDATION_FAILED', 'The continuation token is not one this API gave out.', {
        continuationToken: ['is not valid'],
      });
    }
  }
  const page = await ctx.store.alerts.page(top, after);
  return {
    items: page.items.map((alert) => ({ id: alertId(alert.rule, alert.firedAt), ...alert })),
    ...(page.next
      ? { continuationToken: Buffer.from(JSON.stringify({ after: page.next })).toString('base64url') }
      : {}),
  };
}
