import { settings } from './config';
import { TokenVerifier } from './http/auth';
import { ServiceBusDoorbell } from './messaging/doorbell';
import type { SyncContext } from './operations/context';
import { openStore } from './storage';

/**
 * The composition root: builds the use cases' dependencies once per process from the settings, creating the
 * tables on the way. Entry points call `services()`; nothing else reads process.env.
 */
export interface Services {
  ctx: SyncContext;
  verifier: TokenVerifier;
}

let instance: Promise<Services> | undefined;

/** The process's services; if building them failed (storage not reachable yet), the next call tries again. */
export function services(): Promise<Services> {
  instance ??= build().catch((error: unknown) => {
    instance = undefined;
    throw error;
  });
  return instance;
}

async function build(): Promise<Services> {
  const s = settings();
  const store = await openStore(s.STORAGE_CONNECTION_STRING, s.TABLE_PREFIX);
  return {
    ctx: {
      store,
      doorbell: new ServiceBusDoorbell(s.SERVICEBUS_CONNECTION, s.CUSTOMER_OPERATIONS_QUEUE),
      clock: () => new Date(),
      hq: { customerGroups: s.HQ_CUSTOMER_GROUPS },
      retry: { maxAttempts: s.RETRY_MAX_ATTEMPTS, baseDelayMs: s.RETRY_BASE_DELAY_SECONDS * 1000 },
      pendingResendAfterMs: s.PENDING_RESEND_AFTER_SECONDS * 1000,
      feedMarkerStaleMs: s.FEED_MARKER_STALE_SECONDS * 1000,
      retentionDays: s.AUDIT_RETENTION_DAYS,
      log: (message) => console.warn(message),
    },
    verifier: new TokenVerifier({
      issuer: s.AUTH_ISSUER,
      audience: s.AUTH_AUDIENCE,
      jwksUri: s.AUTH_JWKS_URI,
      jwks: s.AUTH_JWKS,
      devSecret: s.AUTH_DEV_SECRET,
      channelClaim: s.AUTH_CHANNEL_CLAIM,
    }),
  };
}
