import { z } from 'zod';

/**
 * Alerts (API.md "Alerts"): an operator's rule names a metric, a threshold and a window; the alerts job fires the
 * rule once when the metric reaches the threshold and resolves it once when it falls below. Pure rules and types
 * here; the job is shared/alerts/, the tables shared/storage/alerts.ts.
 */
export const ALERT_METRICS = ['failedOperations', 'pendingOverdue', 'syncErrors', 'deadLetters'] as const;
export type AlertMetric = (typeof ALERT_METRICS)[number];

/** Also a RowKey and a path segment: no character that either treats specially, and never `.` or `..`. */
export const alertRuleName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    'must be 1–64 letters, digits, -, _ or ., starting with a letter or digit',
  );

export interface AlertRuleDefinition {
  name: string;
  metric: AlertMetric;
  threshold: number;
  windowMinutes: number;
  webhookUrl?: string;
}

/** Why an alert was resolved: its metric fell below the threshold, or an operator deleted its rule. */
export type ResolutionReason = 'BelowThreshold' | 'RuleDeleted';

export interface Resolution {
  resolvedAt: string;
  /** The metric's value that resolved it (none when the rule was deleted). */
  value?: number;
  reason: ResolutionReason;
}

/**
 * The rule's open alert, as the rule itself records it. The rule entity is the truth (written with its ETag),
 * and each decision is written there before its effects: `recorded` says the alert (and its delivery) exist,
 * `resolution` that it is being resolved. A run that finds an unfinished step finishes it, so a crash between
 * writes can neither fire a rule twice nor lose a firing or a resolution.
 */
export interface OpenAlert {
  firedAt: string;
  value: number;
  recorded: boolean;
  resolution?: Resolution;
}

export interface AlertRule extends AlertRuleDefinition {
  updatedAt: string;
  open?: OpenAlert;
}

export const DELIVERY_STATUSES = ['Pending', 'Delivered', 'Failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** Where a webhook delivery stands, as the alert shows it. */
export interface DeliveryState {
  status: DeliveryStatus;
  attempts: number;
  lastError?: string;
  nextAttemptAt?: string;
  deliveredAt?: string;
}

/** One firing of a rule, and its resolution once there is one. Its id is fixed by the rule and the firing time. */
export interface Alert {
  rule: string;
  metric: AlertMetric;
  /** The metric's value when it fired. */
  value: number;
  threshold: number;
  windowMinutes: number;
  firedAt: string;
  resolvedAt?: string;
  resolvedValue?: number;
  resolvedReason?: ResolutionReason;
  /** The firing's webhook delivery (absent without a webhook). */
  delivery?: DeliveryState;
  /** The resolution's webhook delivery. */
  resolutionDelivery?: DeliveryState;
}

export const alertId = (rule: string, firedAt: string) => `${rule}@${firedAt}`;

export type AlertEvent = 'fired' | 'resolved';

/** What a webhook receives: the alert's fields, which event it is, and a link to the console's matching view. */
export interface WebhookPayload {
  event: AlertEvent;
  /** The same for the firing and its resolution, so a receiver can pair them (and drop a repeat). */
  id: string;
  rule: string;
  metric: AlertMetric;
  /** The value that fired it, or for a resolution the value that resolved it. */
  value?: number;
  threshold: number;
  windowMinutes: number;
  firedAt: string;
  resolvedAt?: string;
  link: string;
}

/** A webhook delivery not yet finished: the outbox entry the alerts job works through. */
export interface Delivery {
  rule: string;
  firedAt: string;
  event: AlertEvent;
  url: string;
  payload: WebhookPayload;
  attempts: number;
  nextAttemptAt: string;
  lastError?: string;
}

/** Fires when the value reaches the threshold, resolves when it falls below; nothing in between. */
export function decide(rule: Pick<AlertRule, 'threshold' | 'open'>, value: number): 'fire' | 'resolve' | 'none' {
  if (!rule.open) return value >= rule.threshold ? 'fire' : 'none';
  return value < rule.threshold ? 'resolve' : 'none';
}

/** A failed delivery is tried again after 1, 2, 4, 8, … minutes. */
export const retryDelayMs = (attempts: number) => 60_000 * 2 ** Math.max(0, attempts - 1);

export interface WebhookPolicy {
  /** Hosts a webhook may point at (exact host names, compared in lower case). */
  hosts: readonly string[];
  /** Loopback targets (localhost, 127.0.0.0/8, ::1) are allowed, over http too: local development and tests. */
  allowLoopback: boolean;
}

const isLoopback = (hostname: string) =>
  hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);

/**
 * Why a webhook URL is refused, or undefined when it is allowed. Webhook URLs are operator input that makes the
 * service send requests: only https to an allowed host (no credentials in the URL, which would be stored and
 * shown), and this machine only where a setting says so. Checked when a rule is saved and again before every
 * delivery, so a narrowed setting takes effect at once.
 */
export function webhookProblem(url: string, policy: WebhookPolicy): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL';
  }
  if (parsed.username || parsed.password) return 'must not carry credentials (user or password)';
  const host = parsed.hostname.toLowerCase();
  if (isLoopback(host)) {
    if (!policy.allowLoopback) return `points at this machine (${host}); ALERT_WEBHOOK_ALLOW_LOOPBACK is off`;
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? undefined : 'must be an http(s) URL';
  }
  if (parsed.protocol !== 'https:') return 'must be an https URL';
  if (!policy.hosts.some((allowed) => allowed.toLowerCase() === host)) {
    return `host ${host} is not in ALERT_WEBHOOK_HOSTS`;
  }
  return undefined;
}

/**
 * The console's view that shows what a metric counts (hash routes of `<base>/api/console/`, documented in the
 * README for the console to follow): failed operations, operations pending since before the window, sync errors,
 * dead letters. `at` is the evaluation time.
 */
export function consoleLink(consoleUrl: string, metric: AlertMetric, windowMinutes: number, at: Date): string {
  switch (metric) {
    case 'failedOperations':
      return `${consoleUrl}#/operations?status=Failed`;
    case 'pendingOverdue': {
      const cutoff = new Date(at.getTime() - windowMinutes * 60_000).toISOString();
      return `${consoleUrl}#/operations?status=Pending&to=${encodeURIComponent(cutoff)}`;
    }
    case 'syncErrors':
      return `${consoleUrl}#/sync-errors`;
    case 'deadLetters':
      return `${consoleUrl}#/dead-letters`;
  }
}
