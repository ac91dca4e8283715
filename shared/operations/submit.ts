import { randomUUID } from 'node:crypto';

import { newAsyncCustomerAccount } from '../domain/accounts';
import { flatten } from '../domain/changes';
import type { Customer, CustomerPatch } from '../domain/customer';
import type { Doorbell } from '../domain/doorbell';
import { DomainError } from '../domain/errors';
import { accepted } from '../domain/lifecycle';
import { type CustomerRecord, operationIdOf } from '../domain/operation';
import type { EditKey } from '../domain/ports';
import { isWriteConflict } from '../domain/versioned';
import { findCustomer } from './accounts';
import type { SyncContext } from './context';

export interface SubmitCreate {
  channel: string;
  customer: Customer;
  by?: string;
  /** Idempotency-Key header and a hash of the request it came with. */
  idempotency?: { key: string; requestHash: string };
}

export interface Accepted {
  operationId: string;
  asyncCustomerAccount?: string;
  status: 'Pending';
}

/**
 * Accepts a create at once: a new customer partition holding the record and operation 1, written in one
 * transaction. The channel gets the async customer account immediately; HQ applies it in the background.
 */
export async function submitCreate(ctx: SyncContext, input: SubmitCreate): Promise<Accepted> {
  let customerKey = newAsyncCustomerAccount();
  if (input.idempotency) {
    const answer = await ctx.store.idempotency.claim(input.channel, input.idempotency.key, {
      requestHash: input.idempotency.requestHash,
      operationId: operationIdOf(customerKey, 1),
      asyncCustomerAccount: customerKey,
    });
    if (answer.requestHash !== input.idempotency.requestHash) throw keyReused('customer');
    customerKey = answer.asyncCustomerAccount;
  }

  const { channel, by } = input;
  const requestId = randomUUID();
  const changes = flatten(input.customer);
  let pending: string | undefined;
  for (let attempt = 0; ; attempt++) {
    const now = ctx.clock();
    const operation = accepted(
      { customerKey, seq: 1, type: 'Create', channel, by, changes, requestId, asyncCustomerAccount: customerKey },
      now.toISOString(),
    );
    const record: CustomerRecord = {
      customerKey,
      asyncCustomerAccount: customerKey,
      version: 0,
      nextSeq: 2,
      appliedThrough: 0,
      updatedAt: now.toISOString(),
    };
    // Listed as pending before the insert, so an operation is always rung, even if this process dies next.
    pending = await ctx.store.pending.mark(customerKey, now);
    try {
      await ctx.store.customers.insertNew(record, operation);
      // Indexed after the insert, so the index never lists an operation that does not exist; if this process
      // dies first, processing the operation indexes it.
      await ctx.store.operationIndex.put(operation);
      break;
    } catch (error) {
      if (!isWriteConflict(error) || error.reason !== 'exists') throw error;
      // Already there: a replayed idempotent request, or the SDK retrying a commit that did land (its first
      // answer was lost). Otherwise a (50-bit) collision with another customer: take a new account.
      if (input.idempotency) break;
      if (await isOurs(ctx, customerKey, 1, requestId)) {
        await ctx.store.operationIndex.put(operation);
        break;
      }
      if (attempt >= 3) throw error;
      customerKey = newAsyncCustomerAccount();
    }
  }
  await ring(ctx, { customerKey, pending });
  return { operationId: operationIdOf(customerKey, 1), asyncCustomerAccount: customerKey, status: 'Pending' };
}

export interface SubmitEdit {
  channel: string;
  account: string;
  patch: CustomerPatch;
  by?: string;
  /** Idempotency-Key header and a hash of the request it came with. */
  idempotency?: { key: string; requestHash: string };
}

/**
 * Accepts an edit by either account. The next sequence number is taken from the customer record and the
 * operation inserted in the same ETag-guarded transaction, so concurrent edits get distinct, gap-free
 * numbers in the order they were accepted. With an Idempotency-Key the key is written in that transaction
 * too: a repeat of the request (the channel lost the answer) gets the first answer and creates nothing.
 */
export async function submitEdit(ctx: SyncContext, input: SubmitEdit): Promise<Accepted> {
  const { channel, by } = input;
  let record = await findCustomer(ctx.store, input.account);
  const { customerKey } = record.value;
  // A repeat is not looked up first: its append fails on the key's row, and the catch below finds the answer.
  const key = input.idempotency && { channel, ...input.idempotency };
  const changes = flatten(input.patch);
  const requestId = randomUUID();
  // One timestamp for every attempt: a retry of the same sequence number rewrites the same index entry.
  const now = ctx.clock();
  await ctx.store.pending.mark(customerKey, now);
  let seq: number;
  for (let attempt = 0; ; attempt++) {
    seq = record.value.nextSeq;
    const { asyncCustomerAccount, customerAccount } = record.value;
    const operation = accepted(
      { customerKey, seq, type: 'Update', channel, by, changes, requestId, asyncCustomerAccount, customerAccount },
      now.toISOString(),
    );
    try {
      await ctx.store.customers.append({ ...record, value: { ...record.value, nextSeq: seq + 1 } }, operation, key);
      await ctx.store.operationIndex.put(operation);
      break;
    } catch (error) {
      if (!isWriteConflict(error) || attempt >= 20) throw error;
      // The key is taken: this is a repeat (or raced one), and the earlier answer is ours.
      const earlier = key && (await acceptedEdit(ctx, customerKey, key));
      if (earlier) return earlier;
      // Our own commit may have landed with its answer lost (the SDK retried it); otherwise someone else
      // changed the record since it was read: read it again.
      if (await isOurs(ctx, customerKey, seq, requestId)) {
        await ctx.store.operationIndex.put(operation);
        break;
      }
      const fresh = await ctx.store.customers.getRecord(customerKey);
      if (!fresh) throw error;
      record = fresh;
    }
  }
  // Marked again after the append: a processor that read the customer before the append may have cleared the
  // first mark, and if the doorbell below is lost this mark is what makes the sync-pending job ring again.
  const pending = await ctx.store.pending.mark(customerKey, ctx.clock());
  await ring(ctx, { customerKey, pending });
  return { operationId: operationIdOf(customerKey, seq), status: 'Pending' };
}

/**
 * The answer given to an earlier request with this edit's Idempotency-Key, if there was one. While its
 * operation is still Pending it is indexed and rung again (both harmless), in case the first request died
 * before doing so; once processed (or deleted by retention) the answer alone is given again.
 */
async function acceptedEdit(ctx: SyncContext, customerKey: string, key: EditKey): Promise<Accepted | undefined> {
  const earlier = await ctx.store.customers.editFor(customerKey, key);
  if (!earlier) return undefined;
  if (earlier.requestHash !== key.requestHash) throw keyReused('edit');
  const op = await ctx.store.customers.getOperation(customerKey, earlier.seq);
  if (op?.value.status === 'Pending') {
    await ctx.store.operationIndex.put(op.value);
    const pending = await ctx.store.pending.mark(customerKey, ctx.clock());
    await ring(ctx, { customerKey, pending });
  }
  return { operationId: operationIdOf(customerKey, earlier.seq), status: 'Pending' };
}

const keyReused = (what: 'customer' | 'edit') =>
  new DomainError(
    'IDEMPOTENCY_KEY_REUSED',
    `This Idempotency-Key was already used with a different request body; use a new key for a new ${what}.`,
  );

/** Whether the operation at `seq` is the one this request wrote (its request id matches). */
async function isOurs(ctx: SyncContext, customerKey: string, seq: number, requestId: string): Promise<boolean> {
  return (await ctx.store.customers.getOperation(customerKey, seq))?.value.requestId === requestId;
}

/**
 * The operation is durable before the doorbell rings, and the customer is listed in the pending index,
 * so a failed ring is logged rather than failing the request: the sync-pending job rings again.
 */
export async function ring(ctx: SyncContext, doorbell: Doorbell): Promise<void> {
  try {
    await ctx.doorbell.ring([doorbell]);
  } catch (error) {
    ctx.log(`Doorbell for ${doorbell.customerKey} not sent (the sync-pending job will retry): ${String(error)}`);
  }
}
