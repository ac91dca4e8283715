import {
  type Alert,
  type AlertEvent,
  alertId,
  type AlertRule,
  consoleLink,
  decide,
  type Delivery,
  type Resolution,
} from '../domain/alerts';
import type { Versioned } from '../domain/versioned';
import type { SyncContext } from '../operations/context';

/**
 * A rule's firing and resolution, written so that each happens exactly once even when a run crashes between two
 * writes or two runs overlap:
 *
 * 1. the decision goes on the rule first, with the rule's ETag (`open` with `recorded: false`, or `open.resolution`):
 *    of two runs that read the same version, one wins, and the loser does nothing;
 * 2. then its effects: the alert with its webhook delivery in one transaction, or the alert's resolution with its
 *    delivery in one transaction — each keyed by the rule and the firing time, so doing it again changes nothing;
 * 3. then the rule says the step is done (`recorded: true`, or `open` cleared), again with its ETag.
 *
 * A run that finds step 1 without step 3 (a crash, or a DELETE that died) finishes steps 2 and 3 first. A
 * WriteConflict means someone else changed the rule: the caller leaves it to the next run (or re-reads).
 */
export type Step = 'fired' | 'resolved' | 'none';

/** Finishes what an earlier run started, then applies the decision for `value` (if a value is given). */
export async function advance(
  ctx: SyncContext,
  stored: Versioned<AlertRule>,
  value: () => Promise<number>,
  now: Date,
): Promise<Step> {
  let { value: rule, etag } = stored;
  ({ rule, etag } = await finish(ctx, rule, etag));
  const current = await value();
  switch (decide(rule, current)) {
    case 'fire': {
      const fired: AlertRule = { ...rule, open: { firedAt: now.toISOString(), value: current, recorded: false } };
      etag = await ctx.store.alerts.saveRule(fired, etag);
      await finish(ctx, fired, etag);
      return 'fired';
    }
    case 'resolve': {
      const resolving = withResolution(rule, {
        resolvedAt: now.toISOString(),
        value: current,
        reason: 'BelowThreshold',
      });
      etag = await ctx.store.alerts.saveRule(resolving, etag);
      await finish(ctx, resolving, etag);
      return 'resolved';
    }
    case 'none':
      return 'none';
  }
}

/** Marks the rule's open alert as being resolved (step 1 of a resolution). */
export const withResolution = (rule: AlertRule, resolution: Resolution): AlertRule => ({
  ...rule,
  open: { ...rule.open!, resolution },
});

/**
 * Steps 2 and 3 of whatever the rule says is under way. Returns the rule as it stands afterwards (its open alert
 * cleared once resolved) with its ETag.
 */
export async function finish(
  ctx: SyncContext,
  rule: AlertRule,
  etag: string,
): Promise<{ rule: AlertRule; etag: string }> {
  const { alerts } = ctx.store;
  const { open } = rule;
  if (!open) return { rule, etag };
  if (!open.recorded) {
    const alert: Alert = {
      rule: rule.name,
      metric: rule.metric,
      value: open.value,
      threshold: rule.threshold,
      windowMinutes: rule.windowMinutes,
      firedAt: open.firedAt,
    };
    await alerts.recordFiring(alert, deliveryOf(ctx, rule, 'fired', new Date(open.firedAt)));
    rule = { ...rule, open: { ...open, recorded: true } };
    etag = await alerts.saveRule(rule, etag);
  }
  const { resolution } = rule.open!;
  if (resolution) {
    await alerts.recordResolution(
      rule.name,
      open.firedAt,
      resolution,
      deliveryOf(ctx, rule, 'resolved', new Date(resolution.resolvedAt)),
    );
    const { open: _resolved, ...closed } = rule;
    rule = closed;
    etag = await alerts.saveRule(rule, etag);
  }
  return { rule, etag };
}

/** The webhook delivery of an event, due at once; none when the rule has no webhook. */
function deliveryOf(ctx: SyncContext, rule: AlertRule, event: AlertEvent, at: Date): Delivery | undefined {
  const { open } = rule;
  if (!rule.webhookUrl || !open) return undefined;
  const resolution = event === 'resolved' ? open.resolution : undefined;
  const value = event === 'fired' ? open.value : resolution?.value;
  return {
    rule: rule.name,
    firedAt: open.firedAt,
    event,
    url: rule.webhookUrl,
    payload: {
      event,
      id: alertId(rule.name, open.firedAt),
      rule: rule.name,
      metric: rule.metric,
      ...(value === undefined ? {} : { value }),
      threshold: rule.threshold,
      windowMinutes: rule.windowMinutes,
      firedAt: open.firedAt,
      ...(resolution ? { resolvedAt: resolution.resolvedAt } : {}),
      link: consoleLink(ctx.alerts.consoleUrl, rule.metric, rule.windowMinutes, at),
    },
    attempts: 0,
    nextAttemptAt: at.toISOString(),
  };
}
