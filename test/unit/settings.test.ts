import { describe, expect, it } from 'vitest';

import { parseSettings } from '../../shared/config';

const required = {
  STORAGE_CONNECTION_STRING: 'UseDevelopmentStorage=true',
  SERVICEBUS_CONNECTION: 'Endpoint=sb://127.0.0.1;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true',
  CUSTOMER_OPERATIONS_QUEUE: 'customer-operations',
  AUTH_ISSUER: 'https://login.microsoftonline.com/tenant/v2.0',
  AUTH_AUDIENCE: 'api://customer-sync',
  AUTH_JWKS_URI: 'https://login.microsoftonline.com/tenant/discovery/v2.0/keys',
  CRM_SYNC_SCHEDULE: '0 */5 * * * *',
  ALERTS_SCHEDULE: '0 */1 * * * *',
};

const problemsOf = (env: Record<string, string | undefined>) => {
  try {
    parseSettings(env);
    return '';
  } catch (error) {
    return (error as Error).message;
  }
};

describe('settings', () => {
  it('gives every optional setting its documented default', () => {
    expect(parseSettings(required)).toMatchObject({
      TABLE_PREFIX: '',
      HQ_CUSTOMER_GROUPS: ['Retail', 'Wholesale', 'Employees'],
      AUTH_CHANNEL_CLAIM: 'channel',
      PENDING_RESEND_AFTER_SECONDS: 30,
      FEED_MARKER_STALE_SECONDS: 120,
      RETRY_MAX_ATTEMPTS: 5,
      RETRY_BASE_DELAY_SECONDS: 2,
      AUDIT_RETENTION_DAYS: 90,
      CRM_CONFLICT_POLICY: 'None',
      CRM_DELETION_POLICY: 'None',
      CRM_DEFAULT_CUSTOMER_GROUP: 'Retail',
      CRM_DEFAULT_CURRENCY: 'EUR',
      CRM_MATCH_FIELDS: ['email'],
      CRM_RUN_BUDGET_SECONDS: 240,
      CRM_CONCURRENCY: 16,
      CRM_REQUEST_TIMEOUT_SECONDS: 30,
      PUBLIC_BASE_URL: 'http://localhost:7071',
      ALERT_WEBHOOK_HOSTS: [],
      ALERT_WEBHOOK_ALLOW_LOOPBACK: false,
      ALERT_WEBHOOK_TIMEOUT_SECONDS: 5,
      ALERT_WEBHOOK_MAX_ATTEMPTS: 6,
    });
    // Coupling is off until a Dataverse environment is named.
    expect(parseSettings(required).DATAVERSE_URL).toBeUndefined();
  });

  it('refuses policies and match fields it does not know', () => {
    const message = problemsOf({ ...required, CRM_CONFLICT_POLICY: 'Newest', CRM_MATCH_FIELDS: 'email,shoeSize' });
    expect(message).toContain('CRM_CONFLICT_POLICY');
    expect(message).toContain('CRM_MATCH_FIELDS');
  });

  it('reads the webhook settings: a host list, and loopback only when it says true', () => {
    const parsed = parseSettings({
      ...required,
      ALERT_WEBHOOK_HOSTS: 'hooks.example.com, ops.example.org',
      ALERT_WEBHOOK_ALLOW_LOOPBACK: 'true',
    });
    expect(parsed.ALERT_WEBHOOK_HOSTS).toEqual(['hooks.example.com', 'ops.example.org']);
    expect(parsed.ALERT_WEBHOOK_ALLOW_LOOPBACK).toBe(true);
    expect(problemsOf({ ...required, ALERT_WEBHOOK_ALLOW_LOOPBACK: 'yes' })).toContain('ALERT_WEBHOOK_ALLOW_LOOPBACK');
    expect(problemsOf({ ...required, PUBLIC_BASE_URL: 'ftp://x' })).toContain('PUBLIC_BASE_URL');
    const { ALERTS_SCHEDULE: _schedule, ...withoutSchedule } = required;
    expect(problemsOf(withoutSchedule)).toContain('ALERTS_SCHEDULE');
  });

  it('lists every missing or invalid setting in one message, not just the first', () => {
    const message = problemsOf({ RETRY_MAX_ATTEMPTS: 'often', TABLE_PREFIX: '1abc' });
    for (const key of [
      'STORAGE_CONNECTION_STRING',
      'SERVICEBUS_CONNECTION',
      'CUSTOMER_OPERATIONS_QUEUE',
      'AUTH_ISSUER',
      'AUTH_AUDIENCE',
      'RETRY_MAX_ATTEMPTS',
      'TABLE_PREFIX',
    ]) {
      expect(message).toContain(`  ${key}: `);
    }
    expect(message).toMatch(/^Invalid configuration:\n/);
  });

  it('needs a source of signing keys: Entra ID’s key set, an inline one, or locally a development secret', () => {
    const { AUTH_JWKS_URI: _uri, ...withoutKeys } = required;
    expect(problemsOf(withoutKeys)).toMatch(/AUTH_JWKS_URI: set AUTH_JWKS_URI/);
    expect(problemsOf({ ...withoutKeys, AUTH_JWKS: '{"keys":[]}' })).toBe('');
    expect(problemsOf({ ...withoutKeys, AUTH_JWKS: '{"keys":' })).toContain('AUTH_JWKS: must be a JSON Web Key Set');
    expect(problemsOf({ ...withoutKeys, AUTH_DEV_SECRET: 'short' })).toContain('AUTH_DEV_SECRET');
    expect(problemsOf({ ...withoutKeys, AUTH_DEV_SECRET: 'long-enough-for-a-local-secret' })).toBe('');
  });

  it('treats an empty value as unset, so `KEY=` falls back to the default', () => {
    expect(parseSettings({ ...required, AUDIT_RETENTION_DAYS: '', TABLE_PREFIX: '' })).toMatchObject({
      AUDIT_RETENTION_DAYS: 90,
      TABLE_PREFIX: '',
    });
    expect(problemsOf({ ...required, AUTH_ISSUER: '' })).toContain('AUTH_ISSUER');
  });

  it('reads numbers and lists from their text', () => {
    const settings = parseSettings({
      ...required,
      HQ_CUSTOMER_GROUPS: ' Retail , B2B,,',
      AUDIT_RETENTION_DAYS: '30',
    });
    expect(settings.HQ_CUSTOMER_GROUPS).toEqual(['Retail', 'B2B']);
    expect(settings.AUDIT_RETENTION_DAYS).toBe(30);
    expect(problemsOf({ ...required, AUDIT_RETENTION_DAYS: '0' })).toContain('AUDIT_RETENTION_DAYS');
    expect(problemsOf({ ...required, AUTH_JWKS_URI: 'not a url' })).toContain('AUTH_JWKS_URI');
  });

  it('connects by connection string or, in Azure, by managed identity: either form of each, and says so when neither', () => {
    const { STORAGE_CONNECTION_STRING: _s, SERVICEBUS_CONNECTION: _b, ...rest } = required;
    const identity = {
      ...rest,
      STORAGE_TABLE_ENDPOINT: 'https://stcontoso.table.core.windows.net/',
      SERVICEBUS_CONNECTION__fullyQualifiedNamespace: 'sb-contoso.servicebus.windows.net',
    };
    expect(parseSettings(identity)).toMatchObject({
      STORAGE_TABLE_ENDPOINT: 'https://stcontoso.table.core.windows.net/',
      SERVICEBUS_CONNECTION__fullyQualifiedNamespace: 'sb-contoso.servicebus.windows.net',
    });
    const neither = problemsOf(rest);
    expect(neither).toContain(
      'STORAGE_CONNECTION_STRING: set STORAGE_CONNECTION_STRING or, with a managed identity, STORAGE_TABLE_ENDPOINT',
    );
    expect(neither).toContain('SERVICEBUS_CONNECTION: set SERVICEBUS_CONNECTION or, with a managed identity');
    expect(problemsOf({ ...identity, SERVICEBUS_CONNECTION__fullyQualifiedNamespace: 'not a host/' })).toContain(
      'SERVICEBUS_CONNECTION__fullyQualifiedNamespace',
    );
  });

  it('reads the console’s sign-in settings, refusing an authority host that is not a URL', () => {
    expect(parseSettings(required)).toMatchObject({ CONSOLE_AUTHORITY_HOST: 'https://login.microsoftonline.com' });
    expect(problemsOf({ ...required, CONSOLE_AUTHORITY_HOST: 'not a url' })).toContain('CONSOLE_AUTHORITY_HOST');
  });
});
