import { DomainError } from '../domain/errors';
import { describeApplied, evaluate, type HqViolation, normalizeEmail } from '../domain/hq-rules';
import type { CustomerRecord, LastError, Operation } from '../domain/operation';
import type { Versioned } from '../storage/customer-store';
import type { FeedEntry } from '../storage/feed';
import { hasStatus } from '../storage/tables';
import type { SyncContext } from './context';

export interface ProcessResult {
  customerKey: string;
  applied: number;
  failed: number;
  waiting: number;
  /** Set when an operation waits for an automatic retry: the customer must stay in the pending index. */
  retryAt?: string;
}

/** At most this many operations per transaction (a batch holds 100 entities, one is the record). */
const BATCH = 50;
const MAX_CONFLICT_RETRIES = 20;

/**
 * Applies a customer's pending operations to the HQ customer master, strictly in submission order.
 *
 * Each round reads the record and the unapplied operations, decides every outcome in memory, and commits the
 * record and all touched operations in one ETag-guarded transaction. Applying is therefore idempotent: a
 * duplicate doorbell finds nothing left to do, a concurrent processor loses the ETag race and re-reads, and a
 * crash before the commit changes nothing. Work outside the partition (account index, email claim, feed) is
 * written so that repeating it is harmless.
 *
 * A Failed operation blocks the later ones of the same customer: they stay Pending and say what they wait on,
 * so that after a repair everything still applies in the order it was submitted.
 */
export async function processCustomer(ctx: SyncContext, customerKey: string): Promise<ProcessResult> {
  await ctx.store.tables.ensureCreated();
  const result: ProcessResult = { customerKey, applied: 0, failed: 0, waiting: 0 };
  // Read before processing: clearing with this ETag fails if a submit marked the customer meanwhile.
  const pendingEntry = await ctx.store.pending.get(customerKey);
  try {
    for (let conflicts = 0; ;) {
      const round = await processRound(ctx, customerKey, result);
      if (round === 'done') break;
      if (round === 'conflict' && ++conflicts > MAX_CONFLICT_RETRIES) {
        throw new Error(`Customer ${customerKey} kept changing while being processed.`);
      }
    }
  } catch (error) {
    if (error instanceof DomainError) throw error;
    await recordTransientFailure(ctx, customerKey, error);
    return result;
  }
  if (pendingEntry && !result.retryAt) await ctx.store.pending.clear(pendingEntry);
  return result;
}

type Round = 'done' | 'more' | 'conflict';

async function processRound(ctx: SyncContext, customerKey: string, result: ProcessResult): Promise<Round> {
  const { store } = ctx;
  const { record, operations } = await store.customers.readUnapplied(customerKey, BATCH);
  if (!record) {
    ctx.log(`Doorbell for unknown customer ${customerKey} ignored.`);
    return 'done';
  }
  await republishUnpublished(ctx, record);

  const now = ctx.clock();
  const at = now.toISOString();
  const next: CustomerRecord = { ...record.value };
  const touched: Versioned<Operation>[] = [];
  const feed: FeedEntry[] = [];
  const emailsReleased: string[] = [];
  let blocker: Operation | undefined;

  for (const stored of operations) {
    const op: Operation = structuredClone(stored.value);
    if (blocker) {
      if (markWaiting(op, blocker, at)) touched.push({ value: op, etag: stored.etag });
      result.waiting++;
      continue;
    }
    if (op.status === 'Failed' || (op.nextAttemptAt && op.nextAttemptAt > at)) {
      if (op.status !== 'Failed') result.retryAt = op.nextAttemptAt;
      blocker = op;
      continue;
    }

    op.attempts++;
    op.nextAttemptAt = undefined;
    const evaluation = evaluate(next.customer, op.changes, ctx.hq);
    op.attributes = evaluation.grid;
    const violation = evaluation.ok
      ? await takeEmail(ctx, next, evaluation.customer.email, op.seq, emailsReleased)
      : evaluation.violation;
    if (violation || !evaluation.ok) {
      fail(op, violation ?? { code: 'INVALID_CUSTOMER', message: 'The customer is invalid.' }, at);
      touched.push({ value: op, etag: stored.etag });
      result.failed++;
      blocker = op;
      continue;
    }

    if (!next.customerAccount) {
      next.customerAccount = await store.accountNumbers.nextAccount();
      // Written before the commit: a crash leaves an index entry for an account nobody holds, which
      // lookups treat as unknown (they check the record), never a customer that cannot be found.
      await store.accounts.put(next.customerAccount, customerKey);
    }
    next.customer = evaluation.customer;
    next.version++;
    next.appliedThrough = op.seq;
    next.updatedAt = at;
    op.status = 'Synced';
    op.customerAccount = next.customerAccount;
    op.asyncCustomerAccount = next.asyncCustomerAccount;
    op.appliedAt = at;
    op.waitingOn = undefined;
    op.lastError = undefined;
    op.changeDescription = describeApplied(op, evaluation.customer, next.customerAccount);
    op.history.push({ at, status: 'Synced', detail: op.changeDescription });
    touched.push({ value: op, etag: stored.etag });
    feed.push({
      customerKey,
      seq: op.seq,
      customerAccount: next.customerAccount,
      asyncCustomerAccount: next.asyncCustomerAccount,
      customer: evaluation.customer,
      changedAt: at,
    });
    result.applied++;
  }

  if (touched.length === 0) return 'done';
  let etag: string;
  try {
    etag = await store.customers.commit({ value: next, etag: record.etag }, touched);
  } catch (error) {
    if (hasStatus(error, 409, 412)) return 'conflict';
    throw error;
  }

  await Promise.all([
    feed.length > 0 ? publish(ctx, { value: next, etag }, feed) : undefined,
    ...emailsReleased.map((email) => releaseEmail(ctx, email, customerKey)),
  ]);
  return operations.length === BATCH && !blocker ? 'more' : 'done';
}

/**
 * Feed entries are written after the commit (the outbox pattern): `publishedThrough` says how far the feed
 * is known to be written, and a processor that finds it behind writes the missing entries again. Their keys
 * are fixed by the operation, so writing twice leaves one entry.
 */
async function publish(ctx: SyncContext, record: Versioned<CustomerRecord>, entries: FeedEntry[]): Promise<void> {
  await ctx.store.feed.append(entries);
  const { appliedThrough, publishedThrough } = record.value;
  if (publishedThrough >= appliedThrough) return;
  try {
    await ctx.store.customers.updateRecord({
      value: { ...record.value, publishedThrough: appliedThrough },
      etag: record.etag,
    });
  } catch (error) {
    // A submit changed the record meanwhile; the next processing round writes the entries again (same keys).
    if (!hasStatus(error, 409, 412)) throw error;
  }
}

async function republishUnpublished(ctx: SyncContext, record: Versioned<CustomerRecord>): Promise<void> {
  const { publishedThrough, appliedThrough, customerAccount, customer } = record.value;
  if (publishedThrough >= appliedThrough || !customerAccount || !customer) return;
  const entries: FeedEntry[] = [];
  for (let seq = publishedThrough + 1; seq <= appliedThrough; seq++) {
    const op = await ctx.store.customers.getOperation(record.value.customerKey, seq);
    if (op?.value.status !== 'Synced' || !op.value.appliedAt) continue;
    entries.push({
      customerKey: record.value.customerKey,
      seq,
      customerAccount,
      asyncCustomerAccount: record.value.asyncCustomerAccount,
      // The per-operation snapshot is not kept; after a crash the feed carries the current customer.
      customer,
      changedAt: op.value.appliedAt,
    });
  }
  await publish(ctx, record, entries);
}

function fail(op: Operation, violation: HqViolation, at: string): void {
  op.status = 'Failed';
  op.lastError = { code: violation.code, message: violation.message, at };
  op.changeDescription = `Failed: ${violation.message}`;
  op.history.push({ at, status: 'Failed', detail: violation.message });
}

/** Marks an operation as waiting on `blocker`; false if it already said so (nothing to write). */
function markWaiting(op: Operation, blocker: Operation, at: string): boolean {
  const failed = blocker.status === 'Failed';
  const reason = failed
    ? `Waiting for operation ${blocker.operationId} (${blocker.type}), which failed: ${blocker.lastError?.message ?? 'unknown error'}`
    : `Waiting for operation ${blocker.operationId} (${blocker.type}), which is retried at ${blocker.nextAttemptAt}.`;
  if (op.waitingOn === blocker.operationId && op.changeDescription === reason) return false;
  op.waitingOn = blocker.operationId;
  op.changeDescription = reason;
  op.lastError = failed ? { code: 'WAITING_FOR_OPERATION', message: reason, at } : op.lastError;
  op.history.push({ at, status: 'Pending', detail: reason });
  return true;
}

/** Claims the customer's new email, if it changes; the violation if another customer holds it. */
async function takeEmail(
  ctx: SyncContext,
  record: CustomerRecord,
  newEmail: string,
  seq: number,
  released: string[],
): Promise<HqViolation | undefined> {
  const email = normalizeEmail(newEmail);
  const previous = record.customer && normalizeEmail(record.customer.email);
  if (email === previous) return undefined;
  if (!(await claimEmail(ctx, email, record.customerKey, seq))) {
    return { code: 'EMAIL_IN_USE', message: `Email '${email}' belongs to another HQ customer.` };
  }
  if (previous) released.push(previous);
  return undefined;
}

/**
 * Claims an email for this customer unless another customer holds it. A claim is stale — and may be taken
 * over — when its holder neither uses the email nor has the claiming operation still to apply.
 */
async function claimEmail(ctx: SyncContext, email: string, customerKey: string, seq: number): Promise<boolean> {
  const claims = ctx.store.emailClaims;
  // Most emails are new: try to insert first and only read the claim when someone has one.
  if (await claims.claim(email, customerKey, seq)) return true;
  for (let attempt = 0; attempt < 5; attempt++) {
    const claim = await claims.get(email);
    if (claim?.customerKey === customerKey) return true;
    if (claim && !(await isStaleClaim(ctx, email, claim.customerKey, claim.seq))) return false;
    if (await claims.claim(email, customerKey, seq, claim)) return true;
  }
  return false;
}

async function isStaleClaim(ctx: SyncContext, email: string, holder: string, seq: number): Promise<boolean> {
  const record = await ctx.store.customers.getRecord(holder);
  if (!record) return true;
  if (record.value.customer && normalizeEmail(record.value.customer.email) === email) return false;
  if (record.value.appliedThrough >= seq) return true;
  const op = await ctx.store.customers.getOperation(holder, seq);
  return !op || op.value.status === 'Failed';
}

async function releaseEmail(ctx: SyncContext, email: string, customerKey: string): Promise<void> {
  const claim = await ctx.store.emailClaims.get(email);
  if (claim?.customerKey === customerKey) await ctx.store.emailClaims.release(email, claim);
}

/**
 * An unexpected error (storage unavailable, throttled, ...) is retried with exponential backoff: the first
 * unapplied operation records the attempt and when to try again, a scheduled doorbell and the pending index
 * make sure it is tried, and after the configured attempts it becomes Failed for an operator to resync.
 * If even recording fails, the error propagates and the message is redelivered by the broker.
 */
async function recordTransientFailure(ctx: SyncContext, customerKey: string, error: unknown): Promise<void> {
  const message = error instanceof Error ? error.message : String(error);
  ctx.log(`Processing customer ${customerKey} failed, will retry: ${message}`);
  const { operations } = await ctx.store.customers.readUnapplied(customerKey, BATCH);
  const first = operations.find((o) => o.value.status !== 'Failed');
  if (!first) throw error;
  const op = structuredClone(first.value);
  const now = ctx.clock();
  const at = now.toISOString();
  op.attempts++;
  const lastError: LastError = { code: 'TRANSIENT_ERROR', message, at };
  op.lastError = lastError;
  if (op.attempts >= ctx.retry.maxAttempts) {
    op.status = 'Failed';
    op.nextAttemptAt = undefined;
    op.changeDescription = `Failed after ${op.attempts} attempts: ${message}`;
    op.history.push({ at, status: 'Failed', detail: op.changeDescription });
    await ctx.store.customers.updateOperation({ value: op, etag: first.etag });
    return;
  }
  const retryAt = new Date(now.getTime() + ctx.retry.baseDelayMs * 2 ** (op.attempts - 1));
  op.nextAttemptAt = retryAt.toISOString();
  op.history.push({
    at,
    status: 'Pending',
    detail: `Attempt ${op.attempts} failed (${message}); retry at ${op.nextAttemptAt}.`,
  });
  await ctx.store.customers.updateOperation({ value: op, etag: first.etag });
  await ctx.store.pending.mark(customerKey, now, op.nextAttemptAt);
  await ctx.doorbell.ring([customerKey], retryAt);
}
