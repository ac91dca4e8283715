import { type Delivery, type DeliveryState, retryDelayMs, webhookProblem } from '../domain/alerts';
import { isWriteConflict, type Versioned } from '../domain/versioned';
import type { SyncContext } from '../operations/context';
import { MetricReader } from './metrics';
import { advance } from './state';
import { postWebhook } from './webhook';

/** Deliveries one run attempts; the rest wait for the next run (a minute later). */
const DELIVERIES_PER_RUN = 100;

export interface AlertsOutcome {
  counts: {
    evaluated: number;
    fired: number;
    resolved: number;
    delivered: number;
    deliveryFailed: number;
    deliveryRetrying: number;
  };
  message: string;
}

/**
 * The `alerts` job: evaluates every rule (firing or resolving it, exactly once — see ./state.ts), then makes the
 * webhook deliveries that are due. Deliveries go out in parallel, each waiting at most the webhook timeout, so a
 * slow or dead receiver delays the run by that much at most and never blocks the others; one that fails is tried
 * again at a later run (after 1, 2, 4, … minutes) until it has had its attempts, then it is Failed.
 */
export async function runAlerts(ctx: SyncContext): Promise<AlertsOutcome> {
  const now = ctx.clock();
  const counts = { evaluated: 0, fired: 0, resolved: 0, delivered: 0, deliveryFailed: 0, deliveryRetrying: 0 };
  const metrics = new MetricReader(ctx, now);
  for (const rule of await ctx.store.alerts.rules()) {
    counts.evaluated++;
    try {
      const step = await advance(ctx, rule, () => metrics.value(rule.value.metric, rule.value.windowMinutes), now);
      if (step !== 'none') counts[step]++;
    } catch (error) {
      // An operator changed or deleted the rule meanwhile: the next run decides on what it is then.
      if (!isWriteConflict(error)) throw error;
      ctx.log(`Alert rule ${rule.value.name} changed while it was evaluated; the next run evaluates it again.`);
    }
  }
  const due = await ctx.store.alerts.dueDeliveries(ctx.clock().toISOString(), DELIVERIES_PER_RUN);
  for (const status of await Promise.all(due.map((delivery) => deliver(ctx, delivery)))) {
    if (status === 'Delivered') counts.delivered++;
    else if (status === 'Failed') counts.deliveryFailed++;
    else if (status === 'Pending') counts.deliveryRetrying++;
  }
  const message =
    `${counts.evaluated} rule(s) evaluated: ${counts.fired} fired, ${counts.resolved} resolved; ` +
    `webhooks: ${counts.delivered} delivered, ${counts.deliveryRetrying} to retry, ${counts.deliveryFailed} failed.`;
  return { counts, message };
}

/** One attempt at a delivery; its outcome is recorded on the alert. Undefined if someone else recorded one first. */
async function deliver(ctx: SyncContext, delivery: Versioned<Delivery>): Promise<DeliveryState['status'] | undefined> {
  const { alerts } = ctx;
  const d = delivery.value;
  const attempts = d.attempts + 1;
  // Checked again now: the allowed hosts may have been narrowed since the rule was saved.
  const refused = webhookProblem(d.url, alerts.webhooks);
  const error = refused ? `webhook URL ${refused}` : await postWebhook(d.url, d.payload, alerts.timeoutMs);
  const at = ctx.clock();
  let state: DeliveryState;
  if (error === undefined) state = { status: 'Delivered', attempts, deliveredAt: at.toISOString() };
  else if (refused || attempts >= alerts.maxAttempts) state = { status: 'Failed', attempts, lastError: error };
  else {
    const nextAttemptAt = new Date(at.getTime() + retryDelayMs(attempts)).toISOString();
    state = { status: 'Pending', attempts, lastError: error, nextAttemptAt };
  }
  try {
    await ctx.store.alerts.deliveryAttempted(delivery, state);
  } catch (e) {
    if (!isWriteConflict(e)) throw e;
    ctx.log(`Delivery of alert ${d.rule}@${d.firedAt} (${d.event}) was recorded by another run.`);
    return undefined;
  }
  if (error !== undefined) ctx.log(`Webhook for alert ${d.rule}@${d.firedAt} (${d.event}) ${error}.`);
  return state.status;
}
