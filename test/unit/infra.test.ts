import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { parseSchedule } from '../../local/host/ncrontab';
import { settingsSchema } from '../../shared/config';

/**
 * The Azure template (azure.yaml + infra/) held against the app: what the function app is given must be what the
 * app reads (shared/config.ts), the app's connections must go by identity with the roles they need, and no
 * setting may carry a key. Bicep is read as text (no Bicep compiler here): the app settings are one object of
 * `NAME: value` lines in infra/resources.bicep.
 */
const root = join(__dirname, '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const resources = read('infra/resources.bicep');

function appSettings(): Map<string, string> {
  const start = resources.indexOf("resource settings 'config'");
  const block = resources.slice(resources.indexOf('properties: {', start));
  const body = block.slice('properties: {'.length, block.indexOf('\n    }'));
  const settings = new Map<string, string>();
  for (const line of body.split('\n')) {
    const match = /^\s+([A-Za-z0-9_]+): (.+)$/.exec(line);
    if (match) settings.set(match[1]!, match[2]!.trim());
  }
  return settings;
}

/** Settings the Functions platform reads itself, not the app. */
const PLATFORM = [
  'AzureWebJobsStorage__accountName',
  'APPLICATIONINSIGHTS_CONNECTION_STRING',
  'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
];
/** Settings that hold a key or a secret, or stand for one: the template uses the identity-based form instead. */
const KEYED = [
  'STORAGE_CONNECTION_STRING',
  'SERVICEBUS_CONNECTION',
  'AUTH_DEV_SECRET',
  'DATAVERSE_TOKEN',
  'DATAVERSE_CLIENT_SECRET',
];

const settings = appSettings();
const shape = settingsSchema.shape as Record<string, { safeParse(value: unknown): { success: boolean } }>;

describe('the Azure template', () => {
  it('sets every setting the app requires, and nothing the app does not read', () => {
    expect(settings.size).toBeGreaterThan(10);
    const required = Object.keys(shape).filter((name) => !shape[name]!.safeParse(undefined).success);
    expect(required.length).toBeGreaterThan(2);
    for (const name of required) expect(settings.has(name), `${name} is required by the app`).toBe(true);
    for (const name of settings.keys()) {
      expect(name in shape || PLATFORM.includes(name), `${name} is not a setting the app reads`).toBe(true);
    }
  });

  it('connects by identity: table endpoint, Service Bus namespace, Entra ID signing keys; no key in any setting', () => {
    for (const name of ['STORAGE_TABLE_ENDPOINT', 'SERVICEBUS_CONNECTION__fullyQualifiedNamespace', 'AUTH_JWKS_URI']) {
      expect(settings.has(name), name).toBe(true);
    }
    for (const name of KEYED) expect(settings.has(name), `${name} holds a key`).toBe(false);
    for (const [name, value] of settings) {
      expect(value, name).not.toMatch(/listKeys|AccountKey|SharedAccessKey|secret|password/i);
    }
    for (const file of readdirSync(join(root, 'infra')).filter((f) => f.endsWith('.bicep'))) {
      expect(read(`infra/${file}`), `${file} takes a secret`).not.toMatch(/@secure\(\)|listKeys\(/);
    }
    expect(resources).toMatch(/allowSharedKeyAccess: false/);
    expect(resources).toMatch(/disableLocalAuth: true/);
  });

  it('gives the app’s identity the roles its connections need', () => {
    const roles = {
      'Storage Table Data Contributor': '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
      'Storage Blob Data Owner': 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
      'Azure Service Bus Data Sender': '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39',
      'Azure Service Bus Data Receiver': '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0',
    };
    for (const [role, id] of Object.entries(roles)) expect(resources, role).toContain(id);
    expect(resources).toContain("identity: { type: 'SystemAssigned' }");
  });

  it('creates the queue the app sends to, with the delivery settings the README promises', () => {
    expect(settings.get('CUSTOMER_OPERATIONS_QUEUE')).toBe('queueName');
    expect(resources).toContain("var queueName = 'customer-operations'");
    expect(resources).toMatch(/maxDeliveryCount: 5\b/);
    expect(resources).toMatch(/lockDuration: 'PT30S'/);
    expect(read('README.md')).toMatch(/max delivery count 5, lock 30 s, dead-lettering on/);
  });

  it('schedules the timers with valid NCRONTAB expressions and runs Node 20 on Flex Consumption', () => {
    for (const name of ['CRM_SYNC_SCHEDULE', 'ALERTS_SCHEDULE']) {
      const value = settings.get(name)!.replace(/^'|'$/g, '');
      expect(() => parseSchedule(value), name).not.toThrow();
    }
    expect(resources).toMatch(/runtime: \{ name: 'node', version: '20' \}/);
    expect(resources).toMatch(/tier: 'FlexConsumption'/);
  });

  it('is an azd project whose function service is the tagged app', () => {
    const azd = read('azure.yaml');
    expect(azd).toMatch(/^services:\n {2}api:\n(?: {4}.+\n)*? {4}host: function$/m);
    expect(azd).toMatch(/^infra:\n {2}provider: bicep\n {2}path: infra$/m);
    expect(resources).toContain("'azd-service-name': 'api'");
    const parameters = JSON.parse(read('infra/main.parameters.json')) as { parameters: Record<string, unknown> };
    const main = read('infra/main.bicep');
    for (const name of Object.keys(parameters.parameters))
      expect(main, name).toMatch(new RegExp(`^param ${name} `, 'm'));
  });
});
