import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';

import { type Settings, settings } from './config';
import { Dataverse, dataverseCredential } from './crm/dataverse';
import type { DoorbellSender } from './domain/doorbell';
import { TokenVerifier } from './http/auth';
import { ServiceBusDoorbell } from './messaging/doorbell';
import type { CouplingSettings, SyncContext } from './operations/context';
import { openStore } from './storage';
import { type LogFields, logLine } from './telemetry/tracing';

/**
 * The composition root: builds the use cases' dependencies once per process from the settings. Entry points
 * call `services()`; nothing else reads process.env. What needs no storage is built at once, so a bad setting
 * stops the app at start-up and a request is authenticated even while storage is down; the context, whose
 * store creates the tables, is built on first use and built again after a failure.
 */
export interface Services {
  verifier: TokenVerifier;
  doorbell: DoorbellSender;
  log: (message: string, fields?: LogFields) => void;
  /** The use cases' context, once the store is open. */
  context(): Promise<SyncContext>;
  /** Settled once tracing is set up (at once when it is off); the app's start waits for it. */
  tracing: Promise<void>;
}

let instance: Services | undefined;

export function services(): Services {
  if (instance) return instance;
  const s = settings();
  const identity = azureIdentity(s);
  const log = (message: string, fields?: LogFields) => console.warn(logLine(message, fields));
  const tracing = startTracing(s, identity).catch((error: unknown) =>
    log(`Tracing not started (the app runs without it): ${String(error)}`),
  );
  const doorbell = new ServiceBusDoorbell(
    s.SERVICEBUS_CONNECTION ?? {
      fullyQualifiedNamespace: s.SERVICEBUS_CONNECTION__fullyQualifiedNamespace!,
      credential: identity(),
    },
    s.CUSTOMER_OPERATIONS_QUEUE,
  );
  const coupling = couplingOf(s, log);
  let context: Promise<SyncContext> | undefined;
  const open = async (): Promise<SyncContext> => ({
    store: await openStore(
      s.STORAGE_CONNECTION_STRING ?? { endpoint: s.STORAGE_TABLE_ENDPOINT!, credential: identity() },
      s.TABLE_PREFIX,
    ),
    doorbell,
    clock: () => new Date(),
    hq: { customerGroups: s.HQ_CUSTOMER_GROUPS },
    retry: { maxAttempts: s.RETRY_MAX_ATTEMPTS, baseDelayMs: s.RETRY_BASE_DELAY_SECONDS * 1000 },
    pendingResendAfterMs: s.PENDING_RESEND_AFTER_SECONDS * 1000,
    feedMarkerStaleMs: s.FEED_MARKER_STALE_SECONDS * 1000,
    retentionDays: s.AUDIT_RETENTION_DAYS,
    log,
    coupling,
    alerts: {
      webhooks: { hosts: s.ALERT_WEBHOOK_HOSTS, allowLoopback: s.ALERT_WEBHOOK_ALLOW_LOOPBACK },
      timeoutMs: s.ALERT_WEBHOOK_TIMEOUT_SECONDS * 1000,
      maxAttempts: s.ALERT_WEBHOOK_MAX_ATTEMPTS,
      consoleUrl: `${s.PUBLIC_BASE_URL.replace(/\/+$/, '')}/api/console/`,
    },
  });
  instance = {
    verifier: new TokenVerifier({
      issuer: s.AUTH_ISSUER,
      audience: s.AUTH_AUDIENCE,
      jwksUri: s.AUTH_JWKS_URI,
      jwks: s.AUTH_JWKS,
      devSecret: s.AUTH_DEV_SECRET,
      channelClaim: s.AUTH_CHANNEL_CLAIM,
    }),
    doorbell,
    log,
    tracing,
    context: () =>
      (context ??= open().catch((error: unknown) => {
        context = undefined;
        throw error;
      })),
  };
  return instance;
}

/**
 * The app's Azure identity for connections without a connection string, made once when first needed:
 * DefaultAzureCredential, which is the managed identity in Azure (AZURE_CLIENT_ID picks a user-assigned one)
 * and the developer's `az login` elsewhere.
 */
function azureIdentity(s: Settings): () => TokenCredential {
  let credential: TokenCredential | undefined;
  return () =>
    (credential ??= new DefaultAzureCredential(
      s.AZURE_CLIENT_ID ? { managedIdentityClientId: s.AZURE_CLIENT_ID } : {},
    ));
}

/**
 * Registers the OpenTelemetry SDK with the Azure Monitor exporter, once, when APPLICATIONINSIGHTS_CONNECTION_STRING
 * is set; otherwise the API stays a no-op (shared/telemetry/tracing.ts) and the package is never loaded. With
 * `Authorization=AAD` (the template's setting) the exporter authenticates with the app's identity, which holds
 * Monitoring Metrics Publisher on the resource. Only the app's own spans are exported: the Azure SDK's and Node's
 * HTTP instrumentations would add a span per storage request (8.5 per operation, BENCHMARKS.md), and the service
 * is tuned for throughput.
 */
async function startTracing(s: Settings, identity: () => TokenCredential): Promise<void> {
  const connectionString = s.APPLICATIONINSIGHTS_CONNECTION_STRING;
  if (!connectionString) return;
  const { useAzureMonitor } = await import('@azure/monitor-opentelemetry');
  const entraId = /(^|;)\s*Authorization\s*=\s*AAD\s*(;|$)/i.test(s.APPLICATIONINSIGHTS_AUTHENTICATION_STRING ?? '');
  useAzureMonitor({
    azureMonitorExporterOptions: { connectionString, ...(entraId ? { credential: identity() } : {}) },
    instrumentationOptions: { azureSdk: { enabled: false }, http: { enabled: false } },
    // Sampled by trace id against a rate that adapts to the load, so a trace's spans in the submit and in the
    // processor are mostly kept or dropped together; 0 turns the limit off and keeps every trace.
    tracesPerSecond: s.TRACES_PER_SECOND,
    samplingRatio: 1,
  });
}

/** The coupling's settings and CRM connector, or undefined (coupling off) when no Dataverse URL is set. */
function couplingOf(s: Settings, log: (message: string) => void): CouplingSettings | undefined {
  if (!s.DATAVERSE_URL) return undefined;
  const dataverse = new Dataverse({
    url: s.DATAVERSE_URL,
    token: s.DATAVERSE_TOKEN,
    credential: s.DATAVERSE_TOKEN
      ? undefined
      : dataverseCredential({
          tenantId: s.DATAVERSE_TENANT_ID,
          clientId: s.DATAVERSE_CLIENT_ID,
          clientSecret: s.DATAVERSE_CLIENT_SECRET,
        }),
    concurrency: s.CRM_CONCURRENCY,
    timeoutMs: s.CRM_REQUEST_TIMEOUT_SECONDS * 1000,
    log,
  });
  return {
    crm: (deadline) => dataverse.session(deadline),
    conflictPolicy: s.CRM_CONFLICT_POLICY,
    deletionPolicy: s.CRM_DELETION_POLICY,
    defaults: { customerGroup: s.CRM_DEFAULT_CUSTOMER_GROUP, currency: s.CRM_DEFAULT_CURRENCY.toUpperCase() },
    matchFields: s.CRM_MATCH_FIELDS,
    budgetMs: s.CRM_RUN_BUDGET_SECONDS * 1000,
    parallelism: s.CRM_CONCURRENCY,
  };
}
