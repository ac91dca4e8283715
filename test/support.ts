import { randomBytes } from 'node:crypto';

import { inject } from 'vitest';

import type { Customer } from '../shared/domain/customer';
import type { Doorbell, DoorbellSender } from '../shared/domain/doorbell';
import type { SyncContext } from '../shared/operations/context';
import { openStore } from '../shared/storage';
import { traceProperties } from '../shared/telemetry/tracing';

/** A table prefix / queue name of its own for each test, so tests run in parallel on shared emulators. */
export const uniqueName = (prefix = 't') => `${prefix}${randomBytes(5).toString('hex')}`;

/**
 * Records rings instead of sending them: for use-case tests where the broker is not what is tested. Each ring
 * keeps the application properties the Service Bus sender would give its message (the trace context, if traced).
 */
export class RecordingDoorbell implements DoorbellSender {
  readonly rung: (Doorbell & { at?: Date; properties?: Record<string, string> })[] = [];
  fail = false;
  async ring(doorbells: readonly Doorbell[], at?: Date) {
    if (this.fail) throw new Error('broker unreachable');
    const properties = traceProperties();
    for (const doorbell of doorbells) this.rung.push({ ...doorbell, at, ...(properties ? { properties } : {}) });
  }
  async check() {}
  async close() {}
}

/** A use-case context over Azurite, with tables of its own and a recording doorbell. */
export async function testContext(overrides: Partial<SyncContext> = {}) {
  const doorbell = new RecordingDoorbell();
  const ctx: SyncContext = {
    store: await openStore(inject('storageConnectionString'), uniqueName()),
    doorbell,
    clock: () => new Date(),
    hq: { customerGroups: ['Retail', 'Wholesale', 'Employees'] },
    retry: { maxAttempts: 3, baseDelayMs: 1000 },
    pendingResendAfterMs: 30_000,
    feedMarkerStaleMs: 120_000,
    retentionDays: 90,
    log: () => undefined,
    alerts: {
      webhooks: { hosts: [], allowLoopback: true },
      timeoutMs: 1000,
      maxAttempts: 6,
      consoleUrl: 'http://localhost:7071/api/console/',
    },
    ...overrides,
  };
  return { ctx, doorbell };
}

let counter = 0;
export function person(overrides: Partial<Customer> = {}): Customer {
  counter++;
  return {
    customerType: 'Person',
    firstName: 'Ann',
    lastName: `Berg${counter}`,
    email: `ann.${counter}.${randomBytes(4).toString('hex')}@example.dk`,
    customerGroup: 'Retail',
    currency: 'DKK',
    address: { street: 'Åboulevarden 1', city: 'Aarhus', postalCode: '8000', countryRegion: 'DK' },
    attributes: { loyaltyTier: 'Gold' },
    ...overrides,
  };
}

export function organization(overrides: Partial<Customer> = {}): Customer {
  counter++;
  return {
    customerType: 'Organization',
    organizationName: `Contoso ${counter}`,
    email: `info.${counter}.${randomBytes(4).toString('hex')}@contoso.example`,
    customerGroup: 'Wholesale',
    currency: 'EUR',
    address: { street: 'Vestergade 2', city: 'Odense', postalCode: '5000', countryRegion: 'DK' },
    ...overrides,
  };
}

/**
 * A small, seeded pseudo-random generator (mulberry32): a seed fixes what a randomized test does, so a failing
 * seed can be run again.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
