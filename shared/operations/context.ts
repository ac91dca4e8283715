import type { WebhookPolicy } from '../domain/alerts';
import type { ConflictPolicy, DeletionPolicy } from '../domain/coupling';
import type { Crm } from '../domain/crm';
import type { CustomerDefaults } from '../domain/crm-mapping';
import type { DoorbellSender } from '../domain/doorbell';
import type { HqSettings } from '../domain/hq-rules';
import type { Store } from '../domain/ports';
import type { LogFields } from '../telemetry/tracing';

/**
 * What every use case receives: the repositories (ports), the doorbell, a clock and the settings, built once
 * per process by the composition root (shared/app.ts) or by a test.
 */
export interface SyncContext {
  store: Store;
  doorbell: DoorbellSender;
  clock: () => Date;
  hq: HqSettings;
  retry: { maxAttempts: number; baseDelayMs: number };
  /** A customer whose doorbell has not led to processing after this long gets it rung again. */
  pendingResendAfterMs: number;
  /**
   * No processing round runs this long: a feed marker this old was left by a crashed round, and the
   * sync-pending job finishes that round's feed entries (until then feed readers hold back).
   */
  feedMarkerStaleMs: number;
  /**
   * Audit data older than this is deleted by the retention job (never Pending or Failed operations); it is
   * also how far back a listing without `from` looks.
   */
  retentionDays: number;
  /**
   * Logs a warning-level line; `fields` name what it is about (operationId, customerKey, jobName), so the line
   * can be found by them, and it is correlated with the active trace (shared/telemetry/tracing.ts, logLine).
   */
  log: (message: string, fields?: LogFields) => void;
  /** Coupling with the CRM; absent when no Dataverse environment is configured. */
  coupling?: CouplingSettings;
  alerts: AlertSettings;
}

export interface AlertSettings {
  /** Where webhooks may point. */
  webhooks: WebhookPolicy;
  /** One webhook request waits this long at most; the job sends its deliveries in parallel. */
  timeoutMs: number;
  /** Attempts of one delivery before it is Failed. */
  maxAttempts: number;
  /** The operator console (`<PUBLIC_BASE_URL>/api/console/`), which a webhook's link points into. */
  consoleUrl: string;
}

export interface CouplingSettings {
  /** The CRM for one run, whose calls stop once `deadline` (epoch ms) has passed. */
  crm(deadline: number): Crm;
  conflictPolicy: ConflictPolicy;
  deletionPolicy: DeletionPolicy;
  /** HQ-required fields a CRM row lacks, for customers created from the CRM. */
  defaults: CustomerDefaults;
  /** HQ fields an uncoupled record is matched on before one is inserted, in priority order. */
  matchFields: string[];
  /** How long one run may take; it stops cleanly and resumes from its cursors next time. */
  budgetMs: number;
  /** Records synchronized at once (each makes a few CRM requests; the connector bounds those too). */
  parallelism: number;
}
