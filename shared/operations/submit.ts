import { randomUUID } from 'node:crypto';

import { newAsyncCustomerAccount } from '../domain/accounts';
import { type Changes, flatten } from '../domain/changes';
import type { Customer, CustomerPatch } from '../domain/customer';
import type { Doorbell } from '../domain/doorbell';
import { DomainError } from '../domain/errors';
import { accepted } from '../domain/lifecycle';
import { type CustomerRecord, HQ_CHANNEL, operationIdOf, type OperationType } from '../domain/operation';
import type { EditKey, Unapplied } from '../domain/ports';
import { isWriteConflict, type Versioned, WriteConflict } from '../domain/versioned';
import { activeSpan, attr, inSpan } from '../telemetry/tracing';
import { customerDeleted, findCustomer } from './accounts';
import type { SyncContext } from './context';
import { sealState } from './doorbell-state';

/** An Idempotency-Key header and a hash of the request it came with. */
export interface Idempotency {
  key: string;
  requestHash: string;
}

export interface SubmitCreate {
  channel: string;
  customer: Customer;
  by?: string;
  idempotency?: Idempotency;
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
export const submitCreate = (ctx: SyncContext, input: SubmitCreate): Promise<Accepted> =>
  traced('Create', input.channel, () => create(ctx, input));

async function create(ctx: SyncContext, input: SubmitCreate): Promise<Accepted> {
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
  let written: Unapplied | undefined;
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
      written = await ctx.store.customers.insertNew(record, operation);
      // Indexed after the insert, so the index never lists an operation that does not exist; if this process
      // dies first, processing the operation indexes it.
      await ctx.store.operationIndex.put(operation);
      break;
    } catch (error) {
      if (!isWriteConflict(error) || error.reason !== 'exists') throw error;
      // Already there: a replayed idempotent request, or the SDK retrying a commit that did land (its first
      // answer was lost). Otherwise a (50-bit) collision with another customer: take a new account.
      if (input.idempotency) {
        // The first request may have died before indexing it: indexed now while Pending (as for an edit's replay).
        const first = await ctx.store.customers.getOperation(customerKey, 1);
        if (first?.value.status === 'Pending') await ctx.store.operationIndex.put(first.value);
        break;
      }
      if (await isOurs(ctx, customerKey, 1, requestId)) {
        await ctx.store.operationIndex.put(operation);
        break;
      }
      if (attempt >= 3) throw error;
      customerKey = newAsyncCustomerAccount();
    }
  }
  named(customerKey, 1);
  await ring(ctx, { customerKey, pending }, written);
  return { operationId: operationIdOf(customerKey, 1), asyncCustomerAccount: customerKey, status: 'Pending' };
}

export interface SubmitEdit {
  channel: string;
  account: string;
  patch: CustomerPatch;
  by?: string;
  idempotency?: Idempotency;
  /**
   * The customer record's ETag as the caller read it: the edit is accepted only if no operation was accepted or
   * applied since (else WriteConflict, and nothing is written), for a caller whose edit was decided on that read.
   */
  ifMatch?: string;
}

/**
 * Accepts an edit by either account. A deleted customer's edit is accepted too: it is refused in order, when
 * it comes to be applied (CUSTOMER_DELETED), as the channel cannot know about a deletion still pending.
 */
export const submitEdit = (ctx: SyncContext, input: SubmitEdit): Promise<Accepted> =>
  traced('Update', input.channel, async () => {
    const { patch, ...rest } = input;
    const record = await findCustomer(ctx.store, input.account);
    if (input.ifMatch && record.etag !== input.ifMatch) throw new WriteConflict('changed');
    return appendOperation(ctx, record, { ...rest, type: 'Update', changes: flatten(patch) });
  });

export interface SubmitDelete {
  account: string;
  /** The operator (the token's subject). */
  by?: string;
  /** Who asks: an operator through the operator API (HQ_CHANNEL) unless said otherwise. */
  channel?: string;
  idempotency?: Idempotency;
}

/**
 * Accepts the deletion of a customer by either account: an operation of type Delete, applied behind the
 * customer's earlier operations. A customer whose deletion is applied is not found (as for GET), except for a
 * repeat of the accepted request under its Idempotency-Key, which gets the first answer. A deletion while one
 * is still pending is accepted, and refused when applied (CUSTOMER_DELETED), like any later operation.
 */
export function submitDelete(ctx: SyncContext, input: SubmitDelete): Promise<Accepted> {
  const channel = input.channel ?? HQ_CHANNEL;
  return traced('Delete', channel, async () => {
    const record = await findCustomer(ctx.store, input.account);
    if (record.value.deleted) {
      const key = input.idempotency && { channel, ...input.idempotency };
      const earlier = key && (await acceptedBefore(ctx, record.value.customerKey, key));
      if (earlier) return earlier;
      throw customerDeleted(input.account);
    }
    return appendOperation(ctx, record, { ...input, channel, type: 'Delete', changes: {} });
  });
}

export interface SubmitRestore {
  account: string;
  /** The whole customer to bring back. */
  customer: Customer;
  channel: string;
  by?: string;
  idempotency?: Idempotency;
}

/**
 * Accepts the restore of a deleted customer: a Create with the whole customer, appended to its partition, so
 * that when applied the customer is back under the same customer account (and async customer account). Only
 * a customer whose deletion is applied can be restored (INVALID_STATE otherwise); two restores that race are
 * both accepted, and the second is refused when applied (CUSTOMER_EXISTS).
 */
export const submitRestore = (ctx: SyncContext, input: SubmitRestore): Promise<Accepted> =>
  traced('Create', input.channel, async () => {
    const { customer, ...rest } = input;
    const record = await findCustomer(ctx.store, input.account);
    if (!record.value.deleted) {
      throw new DomainError(
        'INVALID_STATE',
        `Customer '${input.account}' is not deleted; only a deleted customer can be restored.`,
      );
    }
    return appendOperation(ctx, record, { ...rest, type: 'Create', changes: flatten(customer) });
  });

interface Append {
  channel: string;
  type: OperationType;
  changes: Changes;
  by?: string;
  idempotency?: Idempotency;
  ifMatch?: string;
}

/**
 * Accepts an operation for an existing customer (read as `record`). The next sequence number is taken from the
 * customer record and the operation inserted in the same ETag-guarded transaction, so concurrent operations
 * get distinct, gap-free numbers in the order they were accepted. With an Idempotency-Key the key is written
 * in that transaction too: a repeat of the request (the client lost the answer) gets the first answer and
 * creates nothing.
 */
async function appendOperation(ctx: SyncContext, record: Versioned<CustomerRecord>, input: Append): Promise<Accepted> {
  const { channel, by, type, changes } = input;
  const { customerKey } = record.value;
  // A repeat is not looked up first: its append fails on the key's row, and the catch below finds the answer.
  const key = input.idempotency && { channel, ...input.idempotency };
  const requestId = randomUUID();
  // One timestamp for every attempt: a retry of the same sequence number rewrites the same index entry.
  const now = ctx.clock();
  await ctx.store.pending.mark(customerKey, now);
  let seq: number;
  let written: Unapplied | undefined;
  for (let attempt = 0; ; attempt++) {
    seq = record.value.nextSeq;
    const { asyncCustomerAccount, customerAccount } = record.value;
    const operation = accepted(
      { customerKey, seq, type, channel, by, changes, requestId, asyncCustomerAccount, customerAccount },
      now.toISOString(),
    );
    try {
      written = await ctx.store.customers.append(
        { ...record, value: { ...record.value, nextSeq: seq + 1 } },
        operation,
        key,
      );
      await ctx.store.operationIndex.put(operation);
      break;
    } catch (error) {
      if (!isWriteConflict(error) || attempt >= 20) throw error;
      // The key is taken: this is a repeat (or raced one), and the earlier answer is ours.
      const earlier = key && (await acceptedBefore(ctx, customerKey, key));
      if (earlier) return earlier;
      // Our own commit may have landed with its answer lost (the SDK retried it); otherwise someone else
      // changed the record since it was read: read it again.
      if (await isOurs(ctx, customerKey, seq, requestId)) {
        await ctx.store.operationIndex.put(operation);
        break;
      }
      if (input.ifMatch) throw error;
      const fresh = await ctx.store.customers.getRecord(customerKey);
      if (!fresh) throw error;
      record = fresh;
    }
  }
  // Marked again after the append: a processor that read the customer before the append may have cleared the
  // first mark, and if the doorbell below is lost this mark is what makes the sync-pending job ring again.
  const pending = await ctx.store.pending.mark(customerKey, ctx.clock());
  named(customerKey, seq);
  await ring(ctx, { customerKey, pending }, written);
  return { operationId: operationIdOf(customerKey, seq), status: 'Pending' };
}

/**
 * The answer given to an earlier request with this Idempotency-Key, if there was one. While its
 * operation is still Pending it is indexed and rung again (both harmless), in case the first request died
 * before doing so; once processed (or deleted by retention) the answer alone is given again.
 */
async function acceptedBefore(ctx: SyncContext, customerKey: string, key: EditKey): Promise<Accepted | undefined> {
  const earlier = await ctx.store.customers.editFor(customerKey, key);
  if (!earlier) return undefined;
  if (earlier.requestHash !== key.requestHash) throw keyReused('edit');
  named(customerKey, earlier.seq);
  const op = await ctx.store.customers.getOperation(customerKey, earlier.seq);
  if (op?.value.status === 'Pending') {
    await ctx.store.operationIndex.put(op.value);
    const pending = await ctx.store.pending.mark(customerKey, ctx.clock());
    await ring(ctx, { customerKey, pending });
  }
  return { operationId: operationIdOf(customerKey, earlier.seq), status: 'Pending' };
}

/**
 * A submit is one span (`submit`, inside the request's): its channel and type from the start, its operation id
 * and customer key once known (named, before the doorbell rings, so the send is inside a described submit).
 */
function traced(type: OperationType, channel: string, submit: () => Promise<Accepted>): Promise<Accepted> {
  return inSpan('submit', { attributes: { [attr.channel]: channel, [attr.operationType]: type } }, submit);
}

function named(customerKey: string, seq: number): void {
  activeSpan()?.setAttributes({ [attr.operationId]: operationIdOf(customerKey, seq), [attr.customerKey]: customerKey });
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
 * so a failed ring is logged rather than failing the request: the sync-pending job rings again. With what the
 * submit wrote (`written`), the doorbell carries it, signed, so that the processor need not read it.
 */
export async function ring(ctx: SyncContext, doorbell: Doorbell, written?: Unapplied): Promise<void> {
  try {
    await ctx.doorbell.ring([{ ...doorbell, ...(written && (await sealState(ctx, written))) }]);
  } catch (error) {
    ctx.log(`Doorbell not sent (the sync-pending job will retry): ${String(error)}`, {
      customerKey: doorbell.customerKey,
    });
  }
}
