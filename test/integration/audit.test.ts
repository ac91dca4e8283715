import { beforeAll, describe, expect, it } from 'vitest';

import type { OperationSummary } from '../../shared/domain/operation';
import type { SyncContext } from '../../shared/operations/context';
import { filterFingerprint, type OperationFilter, toFilter } from '../../shared/operations/filter';
import { allOperations, listOperations } from '../../shared/operations/list';
import { processCustomer } from '../../shared/operations/process';
import { getCustomer, getOperation } from '../../shared/operations/queries';
import { editFailedOperation, listFailures, resyncMany, resyncOperation } from '../../shared/operations/repair';
import { submitCreate, submitEdit } from '../../shared/operations/submit';
import { person, testContext } from '../support';

const ids = (ops: OperationSummary[]) => ops.map((o) => o.operationId);
const all = async (ctx: SyncContext, filter: Partial<OperationFilter>) => {
  const out: OperationSummary[] = [];
  for await (const op of allOperations(ctx, { fields: [], ...filter }, 3)) out.push(op);
  return out;
};

const collectPending = async (ctx: SyncContext) => {
  const keys: string[] = [];
  for await (const entry of ctx.store.pending.list()) keys.push(entry.customerKey);
  return keys;
};

describe('finding operations', () => {
  let ctx: SyncContext;
  const submitted: { id: string; channel: string; account: string; city: string; failed: boolean }[] = [];

  beforeAll(async () => {
    ({ ctx } = await testContext());
    for (let i = 0; i < 12; i++) {
      const channel = i % 3 === 0 ? 'pos-1' : 'web';
      const city = i % 2 === 0 ? 'Aarhus' : 'Odense';
      const failed = i % 4 === 0;
      const customer = person({
        customerGroup: failed ? 'Nope' : 'Retail',
        address: { street: 'Vej 1', city, postalCode: '8000', countryRegion: 'DK' },
        attributes: { loyaltyTier: i % 5 === 0 ? 'Gold' : 'Silver' },
      });
      const accepted = await submitCreate(ctx, { channel, customer });
      submitted.push({ id: accepted.operationId, channel, account: accepted.asyncCustomerAccount!, city, failed });
      await processCustomer(ctx, accepted.asyncCustomerAccount!);
    }
  });

  it('lists every operation newest first, page by page, each exactly once', async () => {
    const listed = await all(ctx, {});
    expect(ids(listed)).toEqual(submitted.map((s) => s.id).reverse());
  });

  it.each([
    ['channel', { channel: 'pos-1' }, (s: (typeof submitted)[number]) => s.channel === 'pos-1'],
    ['status Failed', { status: 'Failed' as const }, (s: (typeof submitted)[number]) => s.failed],
    ['status Synced', { status: 'Synced' as const }, (s: (typeof submitted)[number]) => !s.failed],
    // Without status=Failed the code is a filter inside the hour index, not the failed index.
    ['error code', { code: 'CUSTOMER_GROUP_NOT_FOUND' }, (s: (typeof submitted)[number]) => s.failed],
    [
      'channel + error code',
      { channel: 'web', code: 'CUSTOMER_GROUP_NOT_FOUND' },
      (s: (typeof submitted)[number]) => s.failed && s.channel === 'web',
    ],
    [
      'a field',
      { fields: [{ field: 'address.city', value: 'Odense' }] },
      (s: (typeof submitted)[number]) => s.city === 'Odense',
    ],
    [
      'channel + field + status',
      { channel: 'web', status: 'Synced' as const, fields: [{ field: 'address.city', value: 'Aarhus' }] },
      (s: (typeof submitted)[number]) => s.channel === 'web' && !s.failed && s.city === 'Aarhus',
    ],
  ])('filters by %s', async (_, filter, expected) => {
    const listed = await all(ctx, filter);
    expect(ids(listed)).toEqual(
      submitted
        .filter(expected)
        .map((s) => s.id)
        .reverse(),
    );
  });

  it('filters by either account of a customer', async () => {
    const target = submitted.find((s) => !s.failed)!;
    const edit = await submitEdit(ctx, { channel: 'web', account: target.account, patch: { phone: '1' } });
    await processCustomer(ctx, target.account);
    const { customerAccount } = await getCustomer(ctx, target.account);
    expect(ids(await all(ctx, { asyncCustomerAccount: target.account }))).toEqual([edit.operationId, target.id]);
    expect(ids(await all(ctx, { customerAccount }))).toEqual([edit.operationId, target.id]);
    expect(ids(await all(ctx, { customerAccount, type: 'Create' }))).toEqual([target.id]);
  });

  it('a time window returns only what was submitted in it', async () => {
    const third = (await getOperation(ctx, submitted[3]!.id)).value.operationTimestamp;
    const sixth = (await getOperation(ctx, submitted[6]!.id)).value.operationTimestamp;
    const listed = await all(ctx, { from: third, to: sixth });
    expect(ids(listed)).toEqual(
      submitted
        .slice(3, 7)
        .map((s) => s.id)
        .reverse(),
    );
  });

  it('without `from`, a listing looks back as far as audit data is kept (AUDIT_RETENTION_DAYS)', async () => {
    // Two days on: with one day kept, what was submitted today is out of the default window; with three, in it.
    const later = () => new Date(Date.now() + 2 * 86_400_000);
    expect(await all({ ...ctx, clock: later, retentionDays: 1 }, {})).toEqual([]);
    const today = ids(await all(ctx, {}));
    expect(today.length).toBeGreaterThanOrEqual(submitted.length);
    expect(ids(await all({ ...ctx, clock: later, retentionDays: 3 }, {}))).toEqual(today);
  });

  it('hostile filter values match only literally', async () => {
    for (const value of ["' or PartitionKey ne '", "Aarhus' or '1' eq '1", 'ÆØÅ 😀', 'x'.repeat(1024), "''"]) {
      expect(await all(ctx, { fields: [{ field: 'address.city', value }] })).toEqual([]);
    }
  });

  it('refuses a continuation token from another filter', async () => {
    const page = await listOperations(ctx, { fields: [] }, 2);
    await expect(listOperations(ctx, { channel: 'web', fields: [] }, 2, page.continuationToken)).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
  });

  it('refuses a field filter over more than 31 days with nothing else to bound it', () => {
    expect(() => toFilter({ field: 'email', value: 'a@b.dk' })).not.toThrow();
    return expect(
      listOperations(ctx, { fields: [{ field: 'email', value: 'a@b.dk' }], from: '2026-01-01T00:00:00Z' }, 10),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', errors: { from: expect.any(Array) } });
  });

  it('groups failures by error code with channels and the newest example', async () => {
    const failures = await listFailures(ctx);
    const group = failures.find((f) => f.code === 'CUSTOMER_GROUP_NOT_FOUND')!;
    expect(group.count).toBe(submitted.filter((s) => s.failed).length);
    expect(group.channels).toEqual([...new Set(submitted.filter((s) => s.failed).map((s) => s.channel))].sort());
    expect(group.example?.operationId).toBe(submitted.filter((s) => s.failed).at(-1)!.id);
  });
});

describe('repairing a failed operation', () => {
  it('an operator fixes the value, resyncs, and the waiting edits follow in order', async () => {
    const { ctx } = await testContext();
    const create = await submitCreate(ctx, { channel: 'web', customer: person({ customerGroup: 'Nope' }) });
    const account = create.asyncCustomerAccount!;
    await processCustomer(ctx, account);
    const e1 = await submitEdit(ctx, { channel: 'web', account, patch: { phone: '1' } });
    const e2 = await submitEdit(ctx, { channel: 'web', account, patch: { phone: '2' } });
    await processCustomer(ctx, account);

    const { etag } = await getOperation(ctx, create.operationId);
    // Without If-Match the endpoint answers 428 before the use case runs (test/unit/endpoint.test.ts, e2e audit).
    await expect(
      editFailedOperation(ctx, create.operationId, 'W/"stale"', { customerGroup: 'Retail' }, 'op'),
    ).rejects.toMatchObject({
      code: 'ETAG_MISMATCH',
    });
    await expect(editFailedOperation(ctx, create.operationId, etag, { firstName: null }, 'op')).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    const edited = await editFailedOperation(ctx, create.operationId, etag, { customerGroup: 'Retail' }, 'operator-1');
    expect(edited.value.submitted).toMatchObject({ customerGroup: 'Nope' });
    expect(edited.value.history.at(-1)).toMatchObject({
      by: 'operator-1',
      edits: [{ name: 'customerGroup', oldValue: 'Nope', newValue: 'Retail' }],
    });

    expect(await resyncOperation(ctx, e1.operationId, 'op')).toMatch(/NOT_FAILED/);
    expect(await resyncOperation(ctx, create.operationId, 'op')).toBeUndefined();
    await processCustomer(ctx, account);
    for (const id of [create.operationId, e1.operationId, e2.operationId]) {
      expect((await getOperation(ctx, id)).value.status).toBe('Synced');
    }
    expect((await getCustomer(ctx, account)).customer).toMatchObject({ customerGroup: 'Retail', phone: '2' });
    await expect(
      editFailedOperation(
        ctx,
        create.operationId,
        (await getOperation(ctx, create.operationId)).etag,
        { phone: '3' },
        'op',
      ),
    ).rejects.toMatchObject({
      code: 'INVALID_STATE',
    });
    expect((await listFailures(ctx)).length).toBe(0);
  });

  it('an operator repairs a failed edit (a partial change) and it applies on top of the customer', async () => {
    const { ctx } = await testContext();
    const create = await submitCreate(ctx, { channel: 'web', customer: person() });
    const account = create.asyncCustomerAccount!;
    await processCustomer(ctx, account);
    const edit = await submitEdit(ctx, { channel: 'web', account, patch: { customerGroup: 'VIP', phone: '7' } });
    await processCustomer(ctx, account);
    const { etag } = await getOperation(ctx, edit.operationId);
    await expect(editFailedOperation(ctx, edit.operationId, etag, { currency: 'DK' }, 'op')).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    await editFailedOperation(ctx, edit.operationId, etag, { customerGroup: 'Wholesale' }, 'op');
    expect(await resyncOperation(ctx, edit.operationId, 'op')).toBeUndefined();
    await processCustomer(ctx, account);
    expect((await getCustomer(ctx, account)).customer).toMatchObject({ customerGroup: 'Wholesale', phone: '7' });
  });

  it('bulk resync by ids and by filter reports what was accepted and skipped', async () => {
    const { ctx } = await testContext();
    const failed = [];
    for (let i = 0; i < 3; i++) {
      const accepted = await submitCreate(ctx, { channel: 'web', customer: person({ currency: 'ZZZ' }) });
      await processCustomer(ctx, accepted.asyncCustomerAccount!);
      failed.push(accepted.operationId);
    }
    const ok = await submitCreate(ctx, { channel: 'web', customer: person() });
    await processCustomer(ctx, ok.asyncCustomerAccount!);

    const byIds = await resyncMany(ctx, { operationIds: [failed[0]!, ok.operationId, 'ASYNC-NOPE000000-1'] }, 'op');
    expect(byIds.accepted).toBe(1);
    expect(byIds.skipped).toEqual([
      { operationId: ok.operationId, reason: expect.stringMatching(/NOT_FAILED/) },
      { operationId: 'ASYNC-NOPE000000-1', reason: 'NOT_FOUND' },
    ]);
    const byFilter = await resyncMany(
      ctx,
      { filter: { channel: 'web', fields: [{ field: 'currency', value: 'ZZZ' }] } },
      'op',
    );
    expect(byFilter).toEqual({ accepted: 2, skipped: [] });
  });
});

describe('robust listings', () => {
  it('a submit that dies around its insert never lists a phantom, and processing lists what landed', async () => {
    const { ctx } = await testContext();
    const insertNew = ctx.store.customers.insertNew.bind(ctx.store.customers);
    ctx.store.customers.insertNew = () => Promise.reject(new Error('storage unavailable'));
    await expect(submitCreate(ctx, { channel: 'web', customer: person() })).rejects.toThrow('storage unavailable');
    ctx.store.customers.insertNew = insertNew;
    expect(await all(ctx, {})).toEqual([]);

    // Dies after the insert, before indexing: the operation is pending, and its processing indexes it.
    const put = ctx.store.operationIndex.put.bind(ctx.store.operationIndex);
    ctx.store.operationIndex.put = () => Promise.reject(new Error('process died'));
    await expect(submitCreate(ctx, { channel: 'web', customer: person() })).rejects.toThrow('process died');
    ctx.store.operationIndex.put = put;
    expect(await all(ctx, {})).toEqual([]);
    // Both submits listed their customer as pending; the first one's never came to exist.
    for (const key of await collectPending(ctx)) await processCustomer(ctx, key);
    expect((await all(ctx, {})).map((o) => o.status)).toEqual(['Synced']);
  });

  it('pages across hour tables, skipping empty hours, and resumes in the hour the token names', async () => {
    const { ctx } = await testContext();
    // Operations at 22:59, 23:00 (twice), 01:30 the next day and 40 hours later: gaps, a midnight, an hour edge.
    const base = Date.parse('2026-03-01T22:59:59.900Z');
    const offsets = [0, 200, 300, 2.5 * 3_600_000, 40 * 3_600_000];
    const accepted: string[] = [];
    for (const offset of offsets) {
      const at = { ...ctx, clock: () => new Date(base + offset) };
      accepted.push((await submitCreate(at, { channel: 'web', customer: person() })).operationId);
    }
    const window = { from: '2026-03-01T00:00:00.000Z', to: '2026-03-05T00:00:00.000Z' };
    const pages: string[][] = [];
    let token: string | undefined;
    do {
      const page = await listOperations(ctx, { ...window, fields: [] }, 2, token);
      pages.push(ids(page.items));
      token = page.continuationToken;
    } while (token);
    expect(pages.flat()).toEqual([...accepted].reverse());
    // An hour alone: only what happened in it.
    const hour = { from: '2026-03-01T23:00:00.000Z', to: '2026-03-01T23:59:59.999Z' };
    expect(ids((await listOperations(ctx, { ...hour, fields: [] }, 10)).items)).toEqual([accepted[2], accepted[1]]);
  });

  it('pages through bursts and lulls in one hour, each operation once and in order', async () => {
    const { ctx } = await testContext();
    // A resumed page reads about twice the previous page's time span first, then the rest of the hour: a burst
    // after a lull (the first read finds too few) and a lull after a burst (it finds none) must both page right.
    const base = Date.parse('2026-05-01T10:00:00.000Z');
    const offsets = [
      ...Array.from({ length: 20 }, (_, i) => i * 5), // a burst: 20 in 0.1 s
      ...Array.from({ length: 8 }, (_, i) => 60_000 + i * 240_000), // a lull: 8 over half an hour
      ...Array.from({ length: 20 }, (_, i) => 2_100_000 + i * 7), // another burst
    ];
    const accepted: { id: string; channel: string }[] = [];
    for (const [i, offset] of offsets.entries()) {
      const at = { ...ctx, clock: () => new Date(base + offset) };
      const channel = i % 3 === 0 ? 'pos-1' : 'web';
      accepted.push({ id: (await submitCreate(at, { channel, customer: person() })).operationId, channel });
    }
    const window = { from: '2026-05-01T10:00:00.000Z', to: '2026-05-01T10:59:59.999Z' };
    for (const filter of [{}, { channel: 'web' }]) {
      const listed: string[] = [];
      let token: string | undefined;
      do {
        const page = await listOperations(ctx, { ...window, ...filter, fields: [] }, 6, token);
        listed.push(...ids(page.items));
        token = page.continuationToken;
      } while (token);
      const expected = accepted.filter((a) => !('channel' in filter) || a.channel === filter.channel);
      expect(listed).toEqual(expected.map((a) => a.id).reverse());
    }
  });

  it('a sparse filter over many hours answers in steps, each reading at most 48 hour tables', async () => {
    const { ctx } = await testContext();
    const base = Date.parse('2026-04-01T00:30:00.000Z');
    const submitted: string[] = [];
    for (let h = 0; h < 60; h++) {
      const at = { ...ctx, clock: () => new Date(base + h * 3_600_000) };
      const customer = person({ lastName: h === 0 ? 'Needle' : 'Hay' });
      submitted.push((await submitCreate(at, { channel: 'web', customer })).operationId);
    }
    const filter = {
      from: '2026-04-01T00:00:00.000Z',
      to: '2026-04-04T00:00:00.000Z',
      fields: [{ field: 'lastName', value: 'Needle' }],
    };
    const first = await listOperations(ctx, filter, 10);
    expect(first.items).toEqual([]); // 48 hours read, nothing yet: the token goes on from the next hour
    const second = await listOperations(ctx, filter, 10, first.continuationToken);
    expect(ids(second.items)).toEqual([submitted[0]]);
    expect(second.continuationToken).toBeUndefined();
  });

  it('refuses a continuation token whose hour is not a real hour in the window', async () => {
    const { ctx } = await testContext();
    const filter = { fields: [] };
    for (const hour of ['9999123123', '2026139999', '2026022912', '1999010100']) {
      const forged = Buffer.from(JSON.stringify({ d: 'index', f: filterFingerprint(filter), hour, rk: '' })).toString(
        'base64url',
      );
      await expect(listOperations(ctx, filter, 10, forged)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    }
  });

  it('a forged continuation token cannot make a request read without end', async () => {
    const { ctx } = await testContext();
    const accepted = await submitCreate(ctx, { channel: 'web', customer: person() });
    const filter = { asyncCustomerAccount: accepted.asyncCustomerAccount!, fields: [] };
    const forged = Buffer.from(JSON.stringify({ d: 'customer', f: filterFingerprint(filter), seq: 1e12 })).toString(
      'base64url',
    );
    const started = Date.now();
    const page = await listOperations(ctx, filter, 10, forged);
    expect(ids(page.items)).toEqual([accepted.operationId]);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a failure older than the default window is still listed as Failed and counted', async () => {
    const { ctx } = await testContext();
    const longAgo = { ...ctx, clock: () => new Date(Date.now() - 120 * 86_400_000) };
    const old = await submitCreate(longAgo, { channel: 'web', customer: person({ currency: 'ZZZ' }) });
    await processCustomer(longAgo, old.asyncCustomerAccount!);
    expect(ids(await all(ctx, { status: 'Failed' }))).toEqual([old.operationId]);
    expect((await listFailures(ctx)).map((f) => f.count)).toEqual([1]);
    expect(await resyncMany(ctx, { filter: { code: 'UNKNOWN_CURRENCY', fields: [] } }, 'op')).toEqual({
      accepted: 1,
      skipped: [],
    });
  });

  it('a resync does not remove the entry of a failure that happened again meanwhile', async () => {
    const { ctx } = await testContext();
    const accepted = await submitCreate(ctx, { channel: 'web', customer: person({ currency: 'ZZZ' }) });
    await processCustomer(ctx, accepted.asyncCustomerAccount!);
    const { value: op } = await getOperation(ctx, accepted.operationId);
    await ctx.store.operationIndex.removeFailed(op, '2000-01-01T00:00:00.000Z');
    expect(ids(await all(ctx, { status: 'Failed' }))).toEqual([accepted.operationId]);
  });

  it('failures ignore and clean up an entry whose operation is no longer Failed', async () => {
    const { ctx } = await testContext();
    const accepted = await submitCreate(ctx, { channel: 'web', customer: person() });
    await processCustomer(ctx, accepted.asyncCustomerAccount!);
    const { value: op } = await getOperation(ctx, accepted.operationId);
    await ctx.store.operationIndex.putFailed({
      ...op,
      lastError: { code: 'EMAIL_IN_USE', message: 'x', at: op.operationTimestamp },
    });
    expect(await listFailures(ctx)).toEqual([]);
    expect(ids(await all(ctx, { status: 'Failed' }))).toEqual([]);
  });
});
