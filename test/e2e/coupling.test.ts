import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DevDataverse, startDevDataverse } from '../../local/dataverse';
import { organization, person } from '../support';
import { eventually, type Stack, startStack } from './stack';

/**
 * The coupling over HTTP only, as an operator and a CRM user would see it: channels create customers, the
 * crm-sync job runs, a CRM user edits and deletes rows in the development Dataverse, and the API shows the
 * counts, couplings, sync logs and sync errors. The stack has a Dataverse of its own, so no other test's rows
 * show up in its change tracking.
 */
let stack: Stack;
let crm: DevDataverse;
const api = (path: string) => `${crm.apiUrl}${path}`;

beforeAll(async () => {
  crm = await startDevDataverse({ port: 0 });
  stack = await startStack({ DATAVERSE_URL: crm.url });
});
afterAll(async () => {
  await stack?.stop();
  await crm?.close();
});

const operator = () => stack.token('Sync.Operator');
const web = () => stack.token('Channel', 'web');

async function get<T = any>(path: string, status = 200): Promise<T> {
  const response = await stack.call('GET', path, { token: operator() });
  expect(response.status, await response.clone().text()).toBe(status);
  return (await response.json()) as T;
}

/** A create through the channel API, applied; returns the customer's accounts. */
async function created(customer: unknown) {
  const response = await stack.call('POST', '/channels/web/customers', { token: web(), body: customer });
  expect(response.status).toBe(202);
  const { operationId } = (await response.json()) as { operationId: string };
  return (await synced(operationId)).customerAccount as string;
}

/** The operation once HQ has applied it. */
const synced = (operationId: string) =>
  eventually(
    async () => {
      const o = await get(`/operations/${operationId}`);
      return o.status === 'Synced' ? o : undefined;
    },
    5000,
    `${operationId} to be Synced`,
  );

/** One crm-sync run through the API (the feed holds back its last second, so that is waited out). */
async function syncRun() {
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const response = await stack.call('POST', '/jobs/crm-sync/run', { token: operator() });
  const body = await response.text();
  expect(response.status, body).toBe(200);
  return JSON.parse(body) as { counts: Record<string, number>; directions: Record<string, Record<string, number>> };
}

/** What a CRM user does: requests to the Dataverse Web API with any bearer token. */
async function crmRequest(method: string, path: string, body?: unknown) {
  const response = await fetch(api(path), {
    method,
    headers: {
      Authorization: 'Bearer crm-user',
      'Content-Type': 'application/json',
      ...(method === 'PATCH' ? { 'If-Match': '*' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  expect(response.status, await response.clone().text()).toBeLessThan(300);
  return response.status === 204 ? undefined : ((await response.json()) as any);
}

const crmWrites = () => {
  const { byMethod } = crm.stats();
  return (byMethod.POST ?? 0) + (byMethod.PATCH ?? 0) + (byMethod.DELETE ?? 0);
};

describe('coupled synchronization with the CRM, over HTTP', () => {
  let ann: string;
  let contoso: string;
  let annRow: string;
  let contosoRow: string;

  it('a run starts change tracking, then brings channels’ new customers into the CRM, each once, showing the HQ account', async () => {
    await syncRun();
    ann = await created(person({ phone: '+45 1000 0000' }));
    contoso = await created(organization());
    const run = await syncRun();
    expect(run.counts).toMatchObject({ inserted: 2, failed: 0 });
    expect(run.directions.ToCrm).toMatchObject({ inserted: 2 });

    const annCoupling = await get(`/couplings/${ann}`);
    expect(annCoupling).toMatchObject({
      customerAccount: ann,
      crmTable: 'contacts',
      lastSyncResult: 'Success',
      skipped: false,
    });
    annRow = annCoupling.crmId;
    contosoRow = (await get(`/couplings/${contoso}`)).crmId;
    expect(await crmRequest('GET', `accounts(${contosoRow})`)).toMatchObject({ accountnumber: contoso });
    expect((await crmRequest('GET', `contacts?$filter=externaluseridentifier eq '${ann}'`)).value).toHaveLength(1);
    expect((await get(`/customers/${ann}/sync-log`)).items[0]).toMatchObject({
      direction: 'ToCrm',
      result: 'Inserted',
    });
  });

  it('a CRM user’s edit reaches HQ as an operation from the channel crm, and nothing is written back', async () => {
    await crmRequest('PATCH', `contacts(${annRow})`, { telephone1: '+45 2000 0000' });
    const run = await syncRun();
    expect(run.directions.FromCrm).toMatchObject({ modified: 1 });
    await eventually(
      async () => (await get(`/customers/${ann}`)).customer.phone === '+45 2000 0000' || undefined,
      5000,
      'the phone in HQ',
    );
    const fromCrm = await get(`/operations?channel=crm&customerAccount=${ann}`);
    expect(fromCrm.items).toEqual([expect.objectContaining({ channel: 'crm', type: 'Update', status: 'Synced' })]);

    const before = crmWrites();
    const echo = await syncRun();
    expect(echo.counts).toMatchObject({ inserted: 0, modified: 0, failed: 0 });
    const quiet = await syncRun();
    expect(quiet.counts).toMatchObject({ inserted: 0, modified: 0, unchanged: 0, failed: 0 });
    expect(crmWrites()).toBe(before);
  });

  it('edits on both sides become a ModifiedInBoth error with both values; a deletion in the CRM a DeletedInCrm error', async () => {
    const patch = await stack.call('PATCH', `/channels/web/customers/${ann}`, {
      token: web(),
      body: { address: { city: 'Odense' } },
    });
    expect(patch.status).toBe(202);
    await eventually(
      async () => (await get(`/customers/${ann}`)).customer.address.city === 'Odense' || undefined,
      5000,
      'the edit',
    );
    await crmRequest('PATCH', `contacts(${annRow})`, { address1_city: 'Vejle' });
    await crmRequest('DELETE', `accounts(${contosoRow})`);
    const run = await syncRun();
    expect(run.counts).toMatchObject({ failed: 2 });

    const { items } = await get('/sync-errors');
    expect(items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          customerAccount: ann,
          kind: 'ModifiedInBoth',
          differences: [{ field: 'address.city', crmField: 'address1_city', hqValue: 'Odense', crmValue: 'Vejle' }],
          actions: ['Synchronize', 'Retry', 'RemoveCoupling'],
        }),
        expect.objectContaining({ customerAccount: contoso, kind: 'DeletedInCrm', hqExists: true, crmExists: false }),
      ]),
    );
    expect((await get('/sync-errors?kind=DeletedInCrm')).items).toHaveLength(1);
    expect((await get(`/customers/${contoso}`)).customer).toBeDefined(); // not deleted in HQ
  });

  it('an operator settles both errors with the actions that fit, and is refused the ones that do not', async () => {
    const post = (path: string, body?: unknown) =>
      stack.call('POST', path, { token: operator(), ...(body === undefined ? {} : { body }) });
    const refused = await post(`/sync-errors/${contoso}/synchronize`, { use: 'hq' });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ code: 'INVALID_STATE', detail: expect.stringContaining('Restore') });
    expect((await post(`/sync-errors/${ann}/restore`)).status).toBe(409);
    const reader = await stack.call('POST', `/sync-errors/${ann}/retry`, { token: stack.token('Sync.Reader') });
    expect(reader.status).toBe(403);

    const synchronize = await post(`/sync-errors/${ann}/synchronize`, { use: 'crm' });
    expect(synchronize.status, await synchronize.clone().text()).toBe(202);
    const { operationId } = (await synchronize.json()) as { operationId: string };
    const op = await synced(operationId);
    expect(op).toMatchObject({ channel: 'crm', attributes: [{ name: 'address.city', newValue: 'Vejle' }] });
    expect((await get(`/customers/${ann}`)).customer.address.city).toBe('Vejle');

    const restore = await post(`/sync-errors/${contoso}/restore`);
    expect(restore.status).toBe(202);
    expect(await crmRequest('GET', `accounts(${(await get(`/couplings/${contoso}`)).crmId})`)).toMatchObject({
      accountnumber: contoso,
    });
    // Repeated (a double click): the same answer, nothing done twice.
    expect((await post(`/sync-errors/${contoso}/restore`)).status).toBe(202);
    expect((await get('/sync-errors')).items).toEqual([]);
    expect((await get(`/customers/${ann}/sync-log`)).items[0]).toMatchObject({ by: expect.any(String) });

    const before = crmWrites();
    const run = await syncRun();
    expect(run.counts).toMatchObject({ failed: 0, inserted: 0, modified: 0 });
    expect(crmWrites()).toBe(before);
    const retryAll = await post('/sync-errors/retry', {});
    expect(retryAll.status).toBe(202);
    expect(await retryAll.json()).toEqual({ accepted: 0 });
  });

  it('a coupling set up by hand couples instead of duplicating; Remove coupling stops it', async () => {
    const bo = await created(person({ firstName: 'Bo', email: `bo.${Date.now()}@example.dk` }));
    const row = await crmRequest('POST', 'contacts', {
      firstname: 'Bo',
      lastname: 'Holm',
      emailaddress1: 'bo@crm.example.dk',
    });
    const rowId =
      row?.contactid ??
      (await crmRequest('GET', `contacts?$filter=emailaddress1 eq 'bo@crm.example.dk'`)).value[0].contactid;
    const put = await stack.call('PUT', `/couplings/${bo}`, {
      token: operator(),
      body: { crmTable: 'contacts', crmId: rowId },
    });
    expect(put.status, await put.clone().text()).toBe(200);
    expect(await put.json()).toMatchObject({ customerAccount: bo, crmId: rowId });
    const again = await stack.call('PUT', `/couplings/${ann}`, {
      token: operator(),
      body: { crmTable: 'contacts', crmId: rowId },
    });
    expect(again.status).toBe(409);

    await syncRun();
    expect((await crmRequest('GET', `contacts?$filter=lastname eq 'Holm'`)).value).toHaveLength(1);
    const remove = await stack.call('DELETE', `/couplings/${bo}`, { token: operator() });
    expect(remove.status).toBe(204);
    await get(`/couplings/${bo}`, 404);
    expect((await get(`/customers/${bo}/sync-log`)).items[0]).toMatchObject({ result: 'Uncoupled' });
  });

  it('match-based coupling runs as job crm-match and reports its counts', async () => {
    const response = await stack.call('POST', '/couplings/match', { token: operator(), body: { fields: ['email'] } });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ job: 'crm-match' });
    const jobs = await get('/jobs');
    expect(jobs.items.find((j: { job: string }) => j.job === 'crm-match')).toMatchObject({
      counts: { coupled: expect.any(Number), alreadyCoupled: expect.any(Number), noMatch: expect.any(Number) },
    });
  });

  it('a second run while one is running is refused with 409', async () => {
    crm.faults.delayNext(1, 1500); // the first run's first CRM request answers late: it holds the lease meanwhile
    const first = stack.call('POST', '/jobs/crm-sync/run', { token: operator() });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const second = await stack.call('POST', '/jobs/crm-sync/run', { token: operator() });
    expect(second.status).toBe(409);
    expect(await second.json()).toMatchObject({ code: 'JOB_RUNNING' });
    expect((await first).status).toBe(200);
  });
});
