import { z } from 'zod';

import { MATCH_FIELDS } from './domain/crm-mapping';
import { currencyCode } from './domain/customer';

/**
 * Every setting the app reads, parsed once. A missing or invalid setting fails at start-up with one message
 * that lists all of them, instead of surfacing as a 500 on the first request that needs it.
 */
const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);
const int = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const keySet = z.string().refine((text) => {
  try {
    return Array.isArray((JSON.parse(text) as { keys?: unknown }).keys);
  } catch {
    return false;
  }
}, 'must be a JSON Web Key Set: {"keys": [...]}');

/** A choice between settings is reported with every other problem, not only once the rest is valid. */
const always = () => true;

export const settingsSchema = z
  .object({
    // Each connection by connection string (the emulators) or, in Azure, by the managed identity: the table
    // endpoint, and the namespace under the name the Functions host reads for the queue trigger's `connection`.
    STORAGE_CONNECTION_STRING: z.string().min(1).optional(),
    STORAGE_TABLE_ENDPOINT: z.url().optional(),
    SERVICEBUS_CONNECTION: z.string().min(1).optional(),
    // The operator console's Entra ID sign-in (MSAL); unset, it takes the token from its link (local).
    CONSOLE_CLIENT_ID: z.string().min(1).optional(),
    CONSOLE_TENANT_ID: z.string().min(1).optional(),
    CONSOLE_AUTHORITY_HOST: z.url().default('https://login.microsoftonline.com'),
    CONSOLE_SCOPE: z.string().min(1).optional(),
    // A user-assigned managed identity's client id; unset, the system-assigned one.
    AZURE_CLIENT_ID: z.string().min(1).optional(),
    SERVICEBUS_CONNECTION__fullyQualifiedNamespace: z
      .string()
      .regex(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/i, 'a host name, e.g. sb-contoso.servicebus.windows.net')
      .optional(),
    // Required: the queue trigger's binding reads it as %CUSTOMER_OPERATIONS_QUEUE%, which has no default.
    CUSTOMER_OPERATIONS_QUEUE: z.string().min(1),
    TABLE_PREFIX: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9]{0,29}$|^$/, 'letters and digits, starting with a letter')
      .default(''),
    HQ_CUSTOMER_GROUPS: csv.default(['Retail', 'Wholesale', 'Employees']),
    AUTH_ISSUER: z.string().min(1),
    AUTH_AUDIENCE: z.string().min(1),
    AUTH_JWKS_URI: z.url().optional(),
    AUTH_JWKS: keySet.optional(),
    AUTH_DEV_SECRET: z.string().min(16).optional(),
    AUTH_CHANNEL_CLAIM: z.string().min(1).default('channel'),
    PENDING_RESEND_AFTER_SECONDS: int(30),
    FEED_MARKER_STALE_SECONDS: int(120),
    RETRY_MAX_ATTEMPTS: int(5),
    RETRY_BASE_DELAY_SECONDS: int(2),
    AUDIT_RETENTION_DAYS: int(90),
    // Coupling with a CRM (DESIGN.md §8): off, and nothing else affected, while DATAVERSE_URL is unset.
    DATAVERSE_URL: z.url().optional(),
    DATAVERSE_TOKEN: z.string().min(1).optional(),
    DATAVERSE_TENANT_ID: z.string().min(1).optional(),
    DATAVERSE_CLIENT_ID: z.string().min(1).optional(),
    DATAVERSE_CLIENT_SECRET: z.string().min(1).optional(),
    // Required: the crm-sync timer's binding reads it as %CRM_SYNC_SCHEDULE%, which has no default.
    CRM_SYNC_SCHEDULE: z.string().min(1),
    CRM_CONFLICT_POLICY: z.enum(['None', 'SendToCrm', 'GetFromCrm']).default('None'),
    CRM_DELETION_POLICY: z.enum(['None', 'Restore', 'RemoveCoupling', 'Delete']).default('None'),
    CRM_DEFAULT_CUSTOMER_GROUP: z.string().min(1).default('Retail'),
    CRM_DEFAULT_CURRENCY: currencyCode.default('EUR'),
    CRM_MATCH_FIELDS: csv.pipe(z.array(z.enum(MATCH_FIELDS)).min(1, 'name at least one field')).default(['email']),
    CRM_RUN_BUDGET_SECONDS: int(240),
    CRM_CONCURRENCY: int(16),
    CRM_REQUEST_TIMEOUT_SECONDS: int(30),
    // Required: the alerts timer's binding reads it as %ALERTS_SCHEDULE%, which has no default.
    ALERTS_SCHEDULE: z.string().min(1),
    PUBLIC_BASE_URL: z.url({ protocol: /^https?$/ }).default('http://localhost:7071'),
    ALERT_WEBHOOK_HOSTS: csv.default([]),
    ALERT_WEBHOOK_ALLOW_LOOPBACK: z
      .enum(['true', 'false'], 'must be true or false')
      .transform((v) => v === 'true')
      .default(false),
    ALERT_WEBHOOK_TIMEOUT_SECONDS: int(5),
    ALERT_WEBHOOK_MAX_ATTEMPTS: int(6),
    // Tracing to Application Insights (OpenTelemetry, README "Tracing"): off while the connection string is unset.
    // The authentication string is the one the Functions host reads too: `Authorization=AAD` sends telemetry with
    // the app's identity (the resource accepts nothing else when its local auth is disabled).
    APPLICATIONINSIGHTS_CONNECTION_STRING: z.string().min(1).optional(),
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: z.string().min(1).optional(),
    // Traces kept per second and instance (the Azure Monitor distro's rate-limited sampling); 0 keeps every trace.
    TRACES_PER_SECOND: z.coerce.number().min(0).default(5),
  })
  .refine((s) => s.STORAGE_CONNECTION_STRING || s.STORAGE_TABLE_ENDPOINT, {
    message: 'set STORAGE_CONNECTION_STRING or, with a managed identity, STORAGE_TABLE_ENDPOINT',
    path: ['STORAGE_CONNECTION_STRING'],
    when: always,
  })
  .refine((s) => s.SERVICEBUS_CONNECTION || s.SERVICEBUS_CONNECTION__fullyQualifiedNamespace, {
    message: 'set SERVICEBUS_CONNECTION or, with a managed identity, SERVICEBUS_CONNECTION__fullyQualifiedNamespace',
    path: ['SERVICEBUS_CONNECTION'],
    when: always,
  })
  .refine((s) => s.AUTH_JWKS_URI || s.AUTH_JWKS || s.AUTH_DEV_SECRET, {
    message: 'set AUTH_JWKS_URI (Entra ID signing keys), AUTH_JWKS or, locally only, AUTH_DEV_SECRET',
    path: ['AUTH_JWKS_URI'],
    when: always,
  });

export type Settings = z.infer<typeof settingsSchema>;

export function parseSettings(env: Record<string, string | undefined>): Settings {
  // Empty strings count as unset, so `FOO=` in a settings file falls back to the default.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = settingsSchema.safeParse(present);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

let cached: Settings | undefined;
export const settings = (): Settings => (cached ??= parseSettings(process.env));
