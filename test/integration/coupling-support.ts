import { DynamicsWebApi } from 'dynamics-web-api';
import { afterAll, afterEach } from 'vitest';

import { type DevDataverse, startDevDataverse } from '../../local/dataverse';
import { Dataverse } from '../../shared/crm/dataverse';
import { runJob } from '../../shared/jobs';
import type { CouplingSettings, SyncContext } from '../../shared/operations/context';
import { processCustomer } from '../../shared/operations/process';
import { getCustomer } from '../../shared/operations/queries';
import { submitCreate } from '../../shared/operations/submit';
import { person, type RecordingDoorbell, testContext } from '../support';

/**
 * The crm-sync job against Azurite and the development Dataverse, through the real connector. A "CRM user"
 * is the Dataverse client library used directly, as a person in Dynamics 365 Sales would change a row.
 * Each test file that imports this closes the development Dataverse its tests started.
 */
const started = { test: [] as DevDataverse[], file: [] as DevDataverse[] };
afterEach(async () => {
  await Promise.all(started.test.splice(0).map((dv) => dv.close()));
});
afterAll(async () => {
  await Promise.all(started.file.splice(0).map((dv) => dv.close()));
});

/** A context coupled with a development Dataverse that lives for one test, or (from a beforeAll) for the file. */
export async function setup(overrides: Partial<CouplingSettings> = {}, lifetime: 'test' | 'file' = 'test') {
  const dv = await startDevDataverse({ port: 0 });
  started[lifetime].push(dv);
  const { coupling, crmUser } = couplingTo(dv.url, overrides);
  const { ctx, doorbell } = await testContext({ coupling });
  return { ctx, doorbell, crmUser, dv };
}

/**
 * The coupling settings for a Dataverse at `url` through the real connector, and a CRM user: the Dataverse
 * client library used directly, as a person in Dynamics 365 Sales would change a row.
 */
export function couplingTo(url: string, overrides: Partial<CouplingSettings> = {}, timeoutMs = 5000) {
  const connector = new Dataverse({ url, token: 'test', concurrency: 8, timeoutMs, log: () => undefined });
  const coupling: CouplingSettings = {
    crm: (deadline) => connector.session(deadline),
    conflictPolicy: 'None',
    deletionPolicy: 'None',
    defaults: { customerGroup: 'Retail', currency: 'EUR' },
    matchFields: ['email'],
    budgetMs: 60_000,
    parallelism: 8,
    ...overrides,
  };
  const crmUser = new DynamicsWebApi({
    serverUrl: url,
    dataApi: { version: '9.2' },
    onTokenRefresh: async () => 'crm-user',
    propagateErrors: true,
  });
  return { connector, coupling, crmUser };
}

/** Applies every rung doorbell, as the queue trigger would. */
export async function drain(ctx: SyncContext, doorbell: RecordingDoorbell) {
  while (doorbell.rung.length > 0) {
    const rung = doorbell.rung.splice(0);
    for (const key of new Set(rung.map((d) => d.customerKey))) await processCustomer(ctx, key);
  }
}

/** One crm-sync run; the feed holds back entries younger than a second, so wait that out first. */
export async function sync(ctx: SyncContext) {
  await new Promise((resolve) => setTimeout(resolve, 1100));
  return runJob(ctx, 'crm-sync');
}

export const writes = (dv: DevDataverse) => {
  const s = dv.stats();
  return (s.byMethod.POST ?? 0) + (s.byMethod.PATCH ?? 0) + (s.byMethod.DELETE ?? 0);
};

export async function createdCustomer(ctx: SyncContext, doorbell: RecordingDoorbell, overrides = {}) {
  const accepted = await submitCreate(ctx, { channel: 'web', customer: person(overrides) });
  await drain(ctx, doorbell);
  return getCustomer(ctx, accepted.asyncCustomerAccount!);
}

/**
 * One crm-sync run during which `target[method]` fails with `message`, as a process that dies there or storage
 * that is unavailable would make it; the method works again afterwards. Resolves or rejects as the run does.
 */
export async function syncFailing<T extends object>(ctx: SyncContext, target: T, method: keyof T, message: string) {
  const own = Object.hasOwn(target, method);
  const original = target[method];
  target[method] = (() => Promise.reject(new Error(message))) as T[keyof T];
  try {
    return await sync(ctx);
  } finally {
    if (own) target[method] = original;
    else delete target[method];
  }
}

/** A contact a CRM user creates (a new email each time); its row id. */
export async function newCrmContact(crmUser: DynamicsWebApi): Promise<string> {
  return (await crmUser.create({
    collection: 'contacts',
    data: { firstname: 'Bo', lastname: 'Holm', emailaddress1: `bo.${Date.now()}.${Math.random()}@example.dk` },
  })) as string;
}
