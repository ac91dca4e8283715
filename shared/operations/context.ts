import type { HqSettings } from '../domain/hq-rules';
import type { DoorbellSender } from '../messaging/doorbell';
import type { Store } from '../storage';

/** What every use case receives: repositories, the doorbell, a clock and the rules' settings. */
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
  /** Audit data older than this is deleted by the retention job (never Pending or Failed operations). */
  retentionDays: number;
  log: (message: string) => void;
}
