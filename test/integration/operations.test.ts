import { describe, expect, it } from 'vitest';

import { DomainError } from '../../shared/domain/errors';
import { parseOperationId } from '../../shared/domain/operation';
import { WriteConflict } from '../../shared/domain/versioned';
import { runJob } from '../../shared/jobs';
import { listOperations } from '../../shared/operations/list';
import { processCustomer } from '../../shared/operations/process';
import { getCustomer, getOperation, readCustomerUpdates } from '../../shared/operations/queries';
import { listFailures, resyncOperation } from '../../shared/operations/repair';
import { submitCreate, submitDelete, submitEdit, submitRestore } from '../../shared/operations/submit';
import { person, testContext } from '../support';

const channel = 'web';
const keyOf = (operationId: string) => parseOperationId(operationId)!.customerKey;
const later = (ms: number) => new Date(Date.now() + ms);

describe('processing customer operations against Table Storage', () => {
  it('a create becomes Synced with a customer account, an audit trail and a feed entry', async () => {
    const { ctx, doorbell } = await testContext();
    const customer = person();
    const accepted = await submitCreate(ctx, { channel, customer });
    expect(accepted).toMatchObject({ status: 'Pending', asyncCustomerAccount: expect.stringMatching(/^ASYNC-/) });
    expect(doorbell.rung.map((r) => r.customerKey)).toEqual([accepted.asyncCustomerAccount]);

    await processCustomer(ctx, keyOf(accepted.operationId));

    const { value: op } = await getOperation(ctx, accepted.operationId);
    expect(op.status).toBe('Synced');
    expect(op.customerAccount).toMatch(/^C\d{9}$/);
    expect(op.changeDescription).toContain(op.customerAccount);
    expect(op.history.map((h) => h.status)).toEqual(['Pending', 'Synced']);
    expect(op.grid).toContainEqual({ name: 'address.city', oldValue: null, newValue: 'Aarhus' });

    const byReal = await getCustomer(ctx, op.customerAccount!);
    const byAsync = await getCustomer(ctx, accepted.asyncCustomerAccount!);
    expect(byReal).toEqual(byAsync);
    expect(byReal).toMatchObject({ customer, version: 1, asyncCustomerAccount: accepted.asyncCustomerAccount });

    const feed = await readCustomerUpdates({ ...ctx, clock: () => later(5000) }, undefined);
    expect(feed.items).toEqual([
      expect.objectContaining({
        customerAccount: op.customerAccount,
        asyncCustomerAccount: accepted.asyncCustomerAccount,
      }),
    ]);
    const again = await readCustomerUpdates({ ...ctx, clock: () => later(5000) }, feed.cursor);
    expect(again.items).toEqual([]);
  });

  it('an unknown customer group fails the create with a last known error', async () => {
    const { ctx } = await testContext();
    const accepted = await submitCreate(ctx, { channel, customer: person({ customerGroup: 'VIP' }) });
    await processCustomer(ctx, keyOf(accepted.operationId));
    const { value: op } = await getOperation(ctx, accepted.operationId);
    expect(op).toMatchObject({ status: 'Failed', lastError: { code: 'CUSTOMER_GROUP_NOT_FOUND' } });
    expect(op.changeDescription).toMatch(/VIP/);
    await expect(getCustomer(ctx, accepted.asyncCustomerAccount!)).rejects.toThrow(DomainError);
  });

  it('an edit of a customer whose create failed waits and says which operation it waits on', async () => {
    const { ctx } = await testContext();
    const create = await submitCreate(ctx, { channel, customer: person({ currency: 'ZZZ' }) });
    const edit = await submitEdit(ctx, { channel, account: create.asyncCustomerAccount!, patch: { phone: '+45 12' } });
    await processCustomer(ctx, keyOf(create.operationId));
    const { value: waiting } = await getOperation(ctx, edit.operationId);
    expect(waiting).toMatchObject({
      status: 'Pending',
      waitingOn: create.operationId,
      lastError: { code: 'WAITING_FOR_OPERATION' },
    });
    expect(waiting.lastError!.message).toContain('is not a known currency');
  });

  it('five rapid edits of one customer apply in submission order', async () => {
    const { ctx } = await testContext();
    const create = await submitCreate(ctx, { channel, customer: person() });
    const account = create.asyncCustomerAccount!;
    const edits = [];
    for (let i = 1; i <= 5; i++) edits.push(await submitEdit(ctx, { channel, account, patch: { phone: `+45 ${i}` } }));
    // Duplicate and concurrent doorbells: two processors race on the same customer.
    await Promise.all([processCustomer(ctx, account), processCustomer(ctx, account), processCustomer(ctx, account)]);
    const customer = await getCustomer(ctx, account);
    expect(customer).toMatchObject({ version: 6, customer: { phone: '+45 5' } });
    for (const edit of edits) expect((await getOperation(ctx, edit.operationId)).value.status).toBe('Synced');
    const feed = await readCustomerUpdates({ ...ctx, clock: () => later(5000) }, undefined);
    expect(feed.items).toHaveLength(6);
  });

  it('a round that read the record just before another round committed re-reads, instead of failing', async () => {
    const { ctx } = await testContext();
    const create = await submitCreate(ctx, { channel, customer: person() });
    const account = create.asyncCustomerAccount!;
    await submitEdit(ctx, { channel, account, patch: { phone: '+45 1' } });
    const customers = ctx.store.customers;
    const stale = (await customers.getRecord(account))!; // nothing applied yet
    await processCustomer(ctx, account);
    // This round reads the record as it was, then the operations as they are now (Synced).
    const getRecord = customers.getRecord.bind(customers);
    let once = true;
    customers.getRecord = async (key) => {
      if (once && key === account) {
        once = false;
        return stale;
      }
      return getRecord(key);
    };
    await expect(processCustomer(ctx, account)).resolves.toMatchObject({ applied: 0, failed: 0 });
    expect(await getCustomer(ctx, account)).toMatchObject({ version: 2, customer: { phone: '+45 1' } });
    const feed = await readCustomerUpdates({ ...ctx, clock: () => later(5000) }, undefined);
    expect(feed.items).toHaveLength(2); // no round left a marker holding the feed back
  });

  it('concurrent edits get distinct sequence numbers', async () => {
    const { ctx } = await testContext();
    const create = await submitCreate(ctx, { channel, customer: person() });
    const account = create.asyncCustomerAccount!;
    const edits = await Promise.all(
      Array.from({ length: 8 }, (_, i) => submitEdit(ctx, { channel, account, patch: { phone: `+45 ${i}` } })),
    );
    expect(new Set(edits.map((e) => e.operationId)).size).toBe(8);
    await processCustomer(ctx, account);
    expect((await getCustomer(ctx, account)).version).toBe(9);
  });

  it('an email that belongs to another HQ customer fails with EMAIL_IN_USE', async () => {
    const { ctx } = await testContext();
    const email = person().email;
    const first = await submitCreate(ctx, { channel, customer: person({ email }) });
    await processCustomer(ctx, keyOf(first.operationId));
    const second = await submitCreate(ctx, { channel, customer: person({ email: email.toUpperCase() }) });
    await processCustomer(ctx, keyOf(second.operationId));
    expect((await getOperation(ctx, second.operationId)).value).toMatchObject({
      status: 'Failed',
      lastError: { code: 'EMAIL_IN_USE' },
    });
    // Once the first customer moves to another email, the old one is free again.
    await submitEdit(ctx, { channel, account: first.asyncCustomerAccount!, patch: { email: `new.${email}` } });
    await processCustomer(ctx, keyOf(first.operationId));
    const third = await submitCreate(ctx, { channel, customer: person({ email }) });
    await processCustomer(ctx, keyOf(third.operationId));
    expect((await getOperation(ctx, third.operationId)).value.status).toBe('Synced');
  });

  it('the same Idempotency-Key and body give the first answer and create nothing new', async () => {
    const { ctx } = await testContext();
    const customer = person();
    const idempotency = { key: 'order-42', requestHash: 'h1' };
    const first = await submitCreate(ctx, { channel, customer, idempotency });
    const again = await submitCreate(ctx, { channel, customer, idempotency });
    expect(again).toEqual(first);
    await expect(
      submitCreate(ctx, { channel, customer: person(), idempotency: { key: 'order-42', requestHash: 'h2' } }),
    ).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    await processCustomer(ctx, first.asyncCustomerAccount!);
    expect((await getCustomer(ctx, first.asyncCustomerAccount!)).version).toBe(1);
  });

  it('an edit repeated with its Idempotency-Key is accepted once, even when the repeats race', async () => {
    const { ctx } = await testContext();
    const created = await submitCreate(ctx, { channel, customer: person() });
    const account = created.asyncCustomerAccount!;
    const idempotency = { key: 'edit-7', requestHash: 'h1' };
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => submitEdit(ctx, { channel, account, patch: { phone: '7' }, idempotency })),
    );
    expect(new Set(answers.map((a) => a.operationId))).toEqual(new Set([`${account}-2`]));
    expect(await submitEdit(ctx, { channel, account, patch: { phone: '7' }, idempotency })).toEqual(answers[0]);
    // The same key on another channel is another request; another body under the key is refused.
    const other = await submitEdit(ctx, { channel: 'pos-9', account, patch: { phone: '7' }, idempotency });
    expect(other.operationId).toBe(`${account}-3`);
    await expect(
      submitEdit(ctx, { channel, account, patch: { phone: '8' }, idempotency: { key: 'edit-7', requestHash: 'h2' } }),
    ).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    await processCustomer(ctx, account);
    expect((await getCustomer(ctx, account)).version).toBe(3);
  });

  it('a failure after the commit but before the feed write is repaired, and the entry is delivered exactly once', async () => {
    const { ctx } = await testContext();
    const accepted = await submitCreate(ctx, { channel, customer: person() });
    const key = keyOf(accepted.operationId);
    const append = ctx.store.feed.append.bind(ctx.store.feed);
    ctx.store.feed.append = async () => {
      throw new Error('process died');
    };
    // Nothing is left to retry, so the error propagates: the broker redelivers the doorbell.
    await expect(processCustomer(ctx, key)).rejects.toThrow('process died');
    ctx.store.feed.append = append;
    expect((await getOperation(ctx, accepted.operationId)).value.status).toBe('Synced');
    // The failed round's marker holds readers back, so no cursor can move past the missing entry.
    const heldBack = await readCustomerUpdates({ ...ctx, clock: () => later(5000) }, undefined);
    expect(heldBack.items).toHaveLength(0);
    await processCustomer(ctx, key); // the redelivered doorbell writes the entry under its original key
    await processCustomer(ctx, key);
    // The job removes the leftover marker once the customer's feed has caught up.
    const sweep = await runJob({ ...ctx, clock: () => later(3 * 60_000) }, 'sync-pending-operations');
    expect(sweep.counts.markersCleared).toBe(1);
    const feed = await readCustomerUpdates({ ...ctx, clock: () => later(5000) }, heldBack.cursor);
    expect(feed.items).toHaveLength(1);
    expect((await readCustomerUpdates({ ...ctx, clock: () => later(5000) }, feed.cursor)).items).toHaveLength(0);
  });

  it('a transient storage failure is retried with backoff and fails after the configured attempts', async () => {
    const { ctx, doorbell } = await testContext();
    const accepted = await submitCreate(ctx, { channel, customer: person() });
    const key = keyOf(accepted.operationId);
    const next = ctx.store.accountNumbers.nextAccount.bind(ctx.store.accountNumbers);
    ctx.store.accountNumbers.nextAccount = async () => {
      throw new Error('storage throttled');
    };
    let now = Date.now();
    const clocked = { ...ctx, clock: () => new Date(now) };
    await processCustomer(clocked, key);
    let op = (await getOperation(ctx, accepted.operationId)).value;
    expect(op).toMatchObject({ status: 'Pending', attempts: 1, lastError: { code: 'TRANSIENT_ERROR' } });
    expect(Date.parse(op.nextAttemptAt!) - now).toBe(1000);
    expect(doorbell.rung.at(-1)?.at?.toISOString()).toBe(op.nextAttemptAt);

    await processCustomer(clocked, key); // too early: nothing happens
    expect((await getOperation(ctx, accepted.operationId)).value.attempts).toBe(1);

    now += 1000;
    await processCustomer(clocked, key);
    op = (await getOperation(ctx, accepted.operationId)).value;
    expect(Date.parse(op.nextAttemptAt!) - now).toBe(2000);
    now += 2000;
    await processCustomer(clocked, key);
    op = (await getOperation(ctx, accepted.operationId)).value;
    expect(op).toMatchObject({ status: 'Failed', attempts: 3, lastError: { code: 'TRANSIENT_ERROR' } });
    ctx.store.accountNumbers.nextAccount = next;
  });

  it('the sync-pending job re-rings overdue customers and records a run', async () => {
    const { ctx, doorbell } = await testContext();
    doorbell.fail = true; // the submit's own doorbell is lost
    const accepted = await submitCreate(ctx, { channel, customer: person() });
    doorbell.fail = false;
    const run = await runJob({ ...ctx, clock: () => later(60_000) }, 'sync-pending-operations');
    expect(run.counts).toMatchObject({ pendingCustomers: 1, rerung: 1 });
    expect(doorbell.rung.map((r) => r.customerKey)).toEqual([accepted.asyncCustomerAccount]);
    await processCustomer(ctx, accepted.asyncCustomerAccount!);
    const quiet = await runJob({ ...ctx, clock: () => later(60_000) }, 'sync-pending-operations');
    expect(quiet.counts).toMatchObject({ pendingCustomers: 0, rerung: 0 });
    const runs = await ctx.store.jobRuns.latest(['sync-pending-operations'], 10);
    expect(runs).toHaveLength(2);
    expect(runs[0]!.startedAt >= runs[1]!.startedAt).toBe(true);
  });

  it('a customer marked again by a submit while its doorbell was on the way stays listed until that one is processed', async () => {
    const { ctx, doorbell } = await testContext();
    const listed = async () => {
      const keys: string[] = [];
      for await (const entry of ctx.store.pending.list()) keys.push(entry.customerKey);
      return keys;
    };
    await Promise.all([1, 2, 3].map(() => submitCreate(ctx, { channel, customer: person() })));
    const created = await submitCreate(ctx, { channel, customer: person() });
    const account = created.asyncCustomerAccount!;
    const first = doorbell.rung.at(-1)!;
    await submitEdit(ctx, { channel, account, patch: { phone: '+45 1' } });
    const second = doorbell.rung.at(-1)!;
    // The first doorbell's clear (with the mark it was rung for) shares a transaction with the others' clears.
    await Promise.all([...doorbell.rung.slice(0, 3), first].map((d) => processCustomer(ctx, d.customerKey, d.pending)));
    expect(await listed()).toEqual([account]);
    await processCustomer(ctx, account, second.pending);
    expect(await listed()).toEqual([]);
  });

  it('a round that publishes its feed entries leaves no in-flight marker to hold readers back', async () => {
    const { ctx } = await testContext();
    const accepted = await submitCreate(ctx, { channel, customer: person() });
    await processCustomer(ctx, accepted.asyncCustomerAccount!);
    const record = (await ctx.store.customers.getRecord(accepted.asyncCustomerAccount!))!.value;
    expect(record.appliedThrough).toBe(1);
    expect(await ctx.store.feedInFlight.list()).toEqual([]);
  });

  it('an edit through an account number the customer does not hold is refused', async () => {
    const { ctx } = await testContext();
    const accepted = await submitCreate(ctx, { channel, customer: person() });
    await processCustomer(ctx, accepted.asyncCustomerAccount!);
    // An index entry left behind by a crashed create: it points at the customer, who holds another number.
    await ctx.store.accounts.put('C999999999', accepted.asyncCustomerAccount!);
    await expect(submitEdit(ctx, { channel, account: 'C999999999', patch: { phone: '1' } })).rejects.toMatchObject({
      code: 'CUSTOMER_NOT_FOUND',
    });
    await expect(getCustomer(ctx, 'C999999999')).rejects.toMatchObject({ code: 'CUSTOMER_NOT_FOUND' });
  });

  it('an email changed away and back in one round stays claimed by its customer', async () => {
    const { ctx } = await testContext();
    const original = person();
    const accepted = await submitCreate(ctx, { channel, customer: original });
    const account = accepted.asyncCustomerAccount!;
    await processCustomer(ctx, account);
    await submitEdit(ctx, { channel, account, patch: { email: `other.${original.email}` } });
    await submitEdit(ctx, { channel, account, patch: { email: original.email } });
    await processCustomer(ctx, account);
    const rival = await submitCreate(ctx, { channel, customer: person({ email: original.email }) });
    await processCustomer(ctx, rival.asyncCustomerAccount!);
    expect((await getOperation(ctx, rival.operationId)).value.lastError?.code).toBe('EMAIL_IN_USE');
  });

  it('a transient failure is charged to the operation being applied, not to one waiting behind a failure', async () => {
    const { ctx } = await testContext();
    const create = await submitCreate(ctx, { channel, customer: person({ customerGroup: 'Nope' }) });
    const account = create.asyncCustomerAccount!;
    await processCustomer(ctx, account); // the create fails on its customer group
    const edit = await submitEdit(ctx, { channel, account, patch: { phone: '2' } });
    const readUnapplied = ctx.store.customers.readUnapplied.bind(ctx.store.customers);
    ctx.store.customers.readUnapplied = async () => {
      throw new Error('storage unavailable');
    };
    await expect(processCustomer(ctx, account)).rejects.toThrow('storage unavailable');
    ctx.store.customers.readUnapplied = readUnapplied;
    const waiting = (await getOperation(ctx, edit.operationId)).value;
    expect(waiting.attempts).toBe(0);
    expect(waiting.status).toBe('Pending');
  });

  it('the feed is held back behind a round that has stamped times but not yet published', async () => {
    const { ctx } = await testContext();
    const accepted = await submitCreate(ctx, { channel, customer: person() });
    await processCustomer(ctx, accepted.asyncCustomerAccount!);
    const inFuture = { ...ctx, clock: () => later(5000) };
    expect((await readCustomerUpdates(inFuture, undefined)).items).toHaveLength(1);
    // A slower round (another customer) began before this entry was stamped and has not finished.
    const marker = await ctx.store.feedInFlight.begin('ASYNC-SLOWROUND0', new Date(Date.now() - 60_000), 1, 1);
    expect((await readCustomerUpdates(inFuture, undefined)).items).toHaveLength(0);
    await ctx.store.feedInFlight.end(marker);
    expect((await readCustomerUpdates(inFuture, undefined)).items).toHaveLength(1);
  });

  it('a round that crashed between its commit and its feed entries is finished by the sync-pending job', async () => {
    const { ctx } = await testContext();
    const accepted = await submitCreate(ctx, { channel, customer: person() });
    const append = ctx.store.feed.append.bind(ctx.store.feed);
    ctx.store.feed.append = () => Promise.reject(new Error('process died'));
    await expect(processCustomer(ctx, accepted.asyncCustomerAccount!)).rejects.toThrow('process died');
    ctx.store.feed.append = append;
    const inFuture = (ms: number) => ({ ...ctx, clock: () => later(ms) });
    // Committed (Synced), but its entry is missing and the marker holds readers back meanwhile.
    expect((await getOperation(ctx, accepted.operationId)).value.status).toBe('Synced');
    expect((await readCustomerUpdates(inFuture(5000), undefined)).items).toHaveLength(0);

    const run = await runJob(inFuture(10 * 60_000), 'sync-pending-operations');
    expect(run.counts.markersCleared).toBe(1);
    expect(await ctx.store.feedInFlight.oldest()).toBeUndefined();
    const { items } = await readCustomerUpdates(inFuture(10 * 60_000), undefined);
    expect(items.map((i) => i.asyncCustomerAccount)).toEqual([accepted.asyncCustomerAccount]);
  });
});

describe('deleting and restoring customers', () => {
  /** A customer created and applied: its accounts. */
  async function synced(ctx: Awaited<ReturnType<typeof testContext>>['ctx'], customer = person()) {
    const { asyncCustomerAccount } = await submitCreate(ctx, { channel, customer });
    await processCustomer(ctx, asyncCustomerAccount!);
    const { customerAccount } = await getCustomer(ctx, asyncCustomerAccount!);
    return { key: asyncCustomerAccount!, customerAccount, customer };
  }
  const feedOf = async (ctx: Awaited<ReturnType<typeof testContext>>['ctx']) =>
    (await readCustomerUpdates({ ...ctx, clock: () => later(5000) }, undefined)).items;

  it('a deletion applies in order behind earlier edits, and the customer is then not found', async () => {
    const { ctx } = await testContext();
    const { key, customerAccount } = await synced(ctx);
    const edit = await submitEdit(ctx, { channel, account: key, patch: { phone: '+45 11' } });
    const deletion = await submitDelete(ctx, { account: customerAccount, by: 'operator' });
    expect(deletion).toEqual({ operationId: `${key}-3`, status: 'Pending' });

    await processCustomer(ctx, key);

    expect((await getOperation(ctx, edit.operationId)).value.status).toBe('Synced');
    const { value: op } = await getOperation(ctx, deletion.operationId);
    expect(op).toMatchObject({ type: 'Delete', channel: 'hq', status: 'Synced', customerAccount });
    expect(op.changeDescription).toMatch(new RegExp(`^Deleted customer ${customerAccount} \\(person '`));
    expect(op.history.map((h) => [h.status, h.by])).toEqual([
      ['Pending', 'operator'],
      ['Synced', undefined],
    ]);
    // The grid holds every attribute as it was just before the deletion: the edit came first.
    expect(op.grid).toContainEqual({ name: 'phone', oldValue: '+45 11', newValue: null });
    expect(op.grid).toContainEqual({ name: 'attributes.loyaltyTier', oldValue: 'Gold', newValue: null });
    expect(op.grid.every((row) => row.newValue === null)).toBe(true);

    for (const account of [customerAccount, key]) {
      await expect(getCustomer(ctx, account)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(submitDelete(ctx, { account })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    }
    await expect(submitDelete(ctx, { account: 'C999999999' })).rejects.toMatchObject({ code: 'CUSTOMER_NOT_FOUND' });
    // The record stays with its operations: an operator still finds them by either account.
    const listed = await listOperations(ctx, { customerAccount, fields: [] }, 10);
    expect(listed.items.map((i) => i.type)).toEqual(['Delete', 'Update', 'Create']);
    const deletions = await listOperations(ctx, { type: 'Delete', fields: [] }, 10);
    expect(deletions.items.map((i) => i.operationId)).toEqual([deletion.operationId]);
  });

  it('the feed carries the deletion exactly once, with deleted: true and the customer as it was', async () => {
    const { ctx } = await testContext();
    const { key, customerAccount, customer } = await synced(ctx);
    await submitDelete(ctx, { account: key });
    await processCustomer(ctx, key);
    await processCustomer(ctx, key); // a duplicate doorbell finds nothing to do

    const items = await feedOf(ctx);
    expect(items).toHaveLength(2);
    expect(items[0]!.deleted).toBeUndefined();
    expect(items[1]).toEqual({
      customerAccount,
      asyncCustomerAccount: key,
      customer,
      deleted: true,
      changedAt: expect.any(String),
    });
  });

  it('a later edit or deletion is accepted, fails with CUSTOMER_DELETED and holds nothing back', async () => {
    const { ctx } = await testContext();
    const { key, customerAccount } = await synced(ctx);
    const first = await submitDelete(ctx, { account: key });
    // Still pending: a second deletion and an edit are accepted; they are refused in order.
    const second = await submitDelete(ctx, { account: customerAccount });
    const edit = await submitEdit(ctx, { channel, account: customerAccount, patch: { phone: '1' } });
    await processCustomer(ctx, key);
    const late = await submitEdit(ctx, { channel: 'pos-1', account: key, patch: { phone: '2' } });
    const result = await processCustomer(ctx, key);
    expect(result).toMatchObject({ applied: 0, failed: 1, waiting: 0 });

    expect((await getOperation(ctx, first.operationId)).value.status).toBe('Synced');
    for (const { operationId } of [second, edit, late]) {
      const { value: op } = await getOperation(ctx, operationId);
      expect(op).toMatchObject({
        status: 'Failed',
        lastError: { code: 'CUSTOMER_DELETED', message: `Customer ${customerAccount} was deleted in HQ.` },
      });
      expect(op.waitingOn).toBeUndefined();
    }
    // Final: resyncing cannot change it, so it is skipped with the reason.
    expect(await resyncOperation(ctx, late.operationId, 'operator')).toBe('FINAL (CUSTOMER_DELETED)');
    expect((await ctx.store.customers.getRecord(key))!.value).toMatchObject({ appliedThrough: 5, version: 2 });
    const failures = await listFailures(ctx);
    expect(failures).toEqual([
      expect.objectContaining({ code: 'CUSTOMER_DELETED', count: 3, channels: ['hq', 'pos-1', 'web'] }),
    ]);
  });

  it('a deleted customer’s email is free for another customer', async () => {
    const { ctx } = await testContext();
    const { key, customer } = await synced(ctx);
    // Changed in the same round as the deletion: the new email is released too.
    await submitEdit(ctx, { channel, account: key, patch: { email: `new.${customer.email}` } });
    await submitDelete(ctx, { account: key });
    await processCustomer(ctx, key);
    for (const email of [customer.email, `new.${customer.email}`]) {
      expect(await ctx.store.emailClaims.get(email)).toBeUndefined();
      const other = await submitCreate(ctx, { channel, customer: person({ email }) });
      await processCustomer(ctx, other.asyncCustomerAccount!);
      expect((await getOperation(ctx, other.operationId)).value.status).toBe('Synced');
    }
  });

  it('a restore brings the customer back under the same customer account, and the feed shows it again', async () => {
    const { ctx } = await testContext();
    const { key, customerAccount, customer } = await synced(ctx);
    const restore = (account: string) =>
      submitRestore(ctx, { account, customer: { ...customer, phone: '+45 99' }, channel: 'crm', by: 'operator' });
    await expect(restore(customerAccount)).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await submitDelete(ctx, { account: key });
    await expect(restore(customerAccount)).rejects.toMatchObject({ code: 'INVALID_STATE' }); // not yet applied
    await processCustomer(ctx, key);

    const restored = await restore(customerAccount);
    await processCustomer(ctx, key);

    const { value: op } = await getOperation(ctx, restored.operationId);
    expect(op).toMatchObject({ type: 'Create', channel: 'crm', status: 'Synced', customerAccount });
    expect(op.changeDescription).toBe(`Restored person 'Ann ${customer.lastName}' as customer ${customerAccount}.`);
    expect(await getCustomer(ctx, customerAccount)).toMatchObject({
      customerAccount,
      asyncCustomerAccount: key,
      customer: { ...customer, phone: '+45 99' },
      version: 3,
    });
    expect((await ctx.store.customers.getRecord(key))!.value.deleted).toBeUndefined();
    const items = await feedOf(ctx);
    expect(items.map((i) => [i.customerAccount, i.deleted ?? false])).toEqual([
      [customerAccount, false],
      [customerAccount, true],
      [customerAccount, false],
    ]);
    expect(items[2]!.customer.phone).toBe('+45 99');
    // It is a customer again: edits apply, and its email is its own.
    const edit = await submitEdit(ctx, { channel, account: customerAccount, patch: { phone: '+45 98' } });
    await processCustomer(ctx, key);
    expect((await getOperation(ctx, edit.operationId)).value.status).toBe('Synced');
    expect((await ctx.store.emailClaims.get(customer.email))?.customerKey).toBe(key);
  });

  it('of two restores that raced, the second fails with CUSTOMER_EXISTS and holds nothing back', async () => {
    const { ctx } = await testContext();
    const { key, customer } = await synced(ctx);
    await submitDelete(ctx, { account: key });
    await processCustomer(ctx, key);
    const [one, two] = await Promise.all(
      [1, 2].map(() => submitRestore(ctx, { account: key, customer, channel: 'crm' })),
    );
    const edit = await submitEdit(ctx, { channel, account: key, patch: { phone: '3' } });
    await processCustomer(ctx, key);
    const statuses = await Promise.all(
      [one!, two!, edit].map(async (a) => (await getOperation(ctx, a.operationId)).value),
    );
    expect(statuses.map((op) => op.status).sort()).toEqual(['Failed', 'Synced', 'Synced']);
    expect(statuses.find((op) => op.status === 'Failed')?.lastError?.code).toBe('CUSTOMER_EXISTS');
  });

  it('a DELETE repeated with its Idempotency-Key gets the first answer, even once the deletion is applied', async () => {
    const { ctx } = await testContext();
    const { key, customerAccount } = await synced(ctx);
    const idempotency = { key: 'delete-1', requestHash: 'h' };
    const first = await submitDelete(ctx, { account: customerAccount, idempotency });
    expect(await submitDelete(ctx, { account: key, idempotency })).toEqual(first);
    await processCustomer(ctx, key);
    expect(await submitDelete(ctx, { account: customerAccount, idempotency })).toEqual(first);
    await expect(submitDelete(ctx, { account: customerAccount })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await ctx.store.customers.getRecord(key))!.value.nextSeq).toBe(3);
  });

  it('a deletion whose round crashed before its feed entry is finished by the sync-pending job, still deleted', async () => {
    const { ctx } = await testContext();
    const { key, customer } = await synced(ctx);
    await submitDelete(ctx, { account: key });
    const append = ctx.store.feed.append.bind(ctx.store.feed);
    ctx.store.feed.append = () => Promise.reject(new Error('process died'));
    await expect(processCustomer(ctx, key)).rejects.toThrow('process died');
    ctx.store.feed.append = append;

    await runJob({ ...ctx, clock: () => later(10 * 60_000) }, 'sync-pending-operations');
    const items = (await readCustomerUpdates({ ...ctx, clock: () => later(10 * 60_000) }, undefined)).items;
    expect(items.map((i) => i.deleted ?? false)).toEqual([false, true]);
    expect(items[1]!.customer).toEqual(customer);
  });
});

describe('an edit decided on a read of the customer (If-Match)', () => {
  it('is accepted while the customer is as read, and refused with nothing written once another edit came first', async () => {
    const { ctx } = await testContext();
    const { asyncCustomerAccount: key } = await submitCreate(ctx, { channel: 'web', customer: person() });
    const read = (await ctx.store.customers.getRecord(key!))!;
    await submitEdit(ctx, { channel: 'web', account: key!, patch: { phone: '+45 1111' } });

    const stale = submitEdit(ctx, { channel: 'crm', account: key!, patch: { phone: '+45 2222' }, ifMatch: read.etag });
    await expect(stale).rejects.toBeInstanceOf(WriteConflict);
    const now = (await ctx.store.customers.getRecord(key!))!;
    expect(now.value.nextSeq).toBe(3); // the create and the channel's edit, nothing more

    const fresh = await submitEdit(ctx, {
      channel: 'crm',
      account: key!,
      patch: { phone: '+45 2222' },
      ifMatch: now.etag,
    });
    expect(parseOperationId(fresh.operationId)?.seq).toBe(3);
  });
});
