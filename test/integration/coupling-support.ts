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
  const connector = new Dataverse({
    url: dv.url,
    token: 'test',
    concurrency: 8,
    timeoutMs: 5000,
    log: () => undefined,
  });
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
  const { ctx, doorbell } = await testContext({ coupling });
  const crmUser = new DynamicsWebApi({
    serverUrl: dv.url,
    dataApi: { version: '9.2' },
    onTokenRefresh: async () => 'crm-user',
    propagateErrors: true,
  });
  return { ctx, doorbell, crmUser, dv };
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
