import type { DoorbellSender } from '../domain/doorbell';
import type { HqSettings } from '../domain/hq-rules';
import type { Store } from '../domain/ports';

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
  log: (message: string) => void;
}
