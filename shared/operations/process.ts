import { type AttributeChange, deletionGrid } from '../domain/changes';
import type { Customer } from '../domain/customer';
import type { Doorbell } from '../domain/doorbell';
import { checkExistence, evaluate, type Evaluation, type HqViolation, normalizeEmail } from '../domain/hq-rules';
import { applied, attemptFailed, failed, isFinal, waiting } from '../domain/lifecycle';
import type { CustomerRecord, Operation } from '../domain/operation';
import type { FeedEntry, Unapplied } from '../domain/ports';
import { isWriteConflict, type Versioned } from '../domain/versioned';
import { attr, inSpan } from '../telemetry/tracing';
import type { SyncContext } from './context';

export interface ProcessResult {
  customerKey: string;
  applied: number;
  failed: number;
  waiting: number;
  /** The operations whose new state (applied, failed, waiting, an attempt failed) this call committed. */
  operationIds: string[];
  /** Set when an operation waits for an automatic retry: the customer must stay in the pending index. */
  retryAt?: string;
}

/**
 * Operations per transaction. A batch holds 100 entities and 4 MiB; a maximal operation (50 long attributes,
 * grid and history) is under 200 KiB, so 16 of them and the record stay well inside both limits.
 */
const BATCH = 16;
const MAX_CONFLICT_RETRIES = 20;

/** What one processCustomer call carries across its rounds. */
interface Run {
  result: ProcessResult;
  /** An account number allocated for the create, kept across conflict rounds so retries do not burn numbers. */
  allocatedAccount?: string;
}

/**
 * Applies a customer's pending operations to the HQ customer master, strictly in submission order.
 *
 * Each round reads the record and the unapplied operations, decides every outcome in memory, and commits the
 * record and all touched operations in one ETag-guarded transaction. Applying is therefore idempotent: a
 * duplicate doorbell finds nothing left to do, a concurrent processor loses the ETag race and re-reads, and a
 * crash before the commit changes nothing. Work outside the partition (account index, email claims, feed) is
 * written so that repeating it is harmless.
 *
 * A Failed operation blocks the later ones of the same customer: they stay Pending and say what they wait on,
 * so that after a repair everything still applies in the order it was submitted. Except a final failure (an
 * edit or deletion of a deleted customer, a restore of one that exists): no repair can change it, so it is
 * settled like an applied operation and the later ones go on.
 */
export async function processCustomer(
  ctx: SyncContext,
  customerKey: string,
  pending?: Doorbell['pending'],
  /** What the doorbell's submit wrote (authenticated: doorbell-state.ts): the first round starts from it. */
  known?: Unapplied,
): Promise<ProcessResult> {
  const run: Run = { result: { customerKey, applied: 0, failed: 0, waiting: 0, operationIds: [] } };
  // The pending entry's ETag from before processing (the doorbell carries the one its ring was marked with):
  // clearing with it fails if a submit marked the customer meanwhile.
  const pendingEntry = pending ? { customerKey, etag: pending } : await ctx.store.pending.get(customerKey);
  for (let conflicts = 0; ;) {
    const round = await processRound(ctx, customerKey, run, known);
    known = undefined; // a later round reads what is there now
    if (round === 'done') break;
    if (round === 'conflict' && ++conflicts > MAX_CONFLICT_RETRIES) {
      throw new Error(`Customer ${customerKey} kept changing while being processed.`);
    }
  }
  if (pendingEntry && !run.result.retryAt) await ctx.store.pending.clear(pendingEntry);
  return run.result;
}

type Round = 'done' | 'more' | 'conflict';

/**
 * One round from the record and its unapplied operations: as read, or as the doorbell knew them. A known copy
 * that has gone stale fails the commit (its ETags no longer match) and the next round reads.
 */
async function processRound(ctx: SyncContext, customerKey: string, run: Run, known?: Unapplied): Promise<Round> {
  const { store } = ctx;
  const { record, operations } =
    known && known.operations.length <= BATCH ? known : await store.customers.readUnapplied(customerKey, BATCH);
  if (!record) {
    ctx.log('Doorbell for an unknown customer ignored.', { customerKey });
    return 'done';
  }
  if (operations.length === 0) return 'done';
  // An operation past the record's appliedThrough that is settled already: a concurrent round committed between
  // this round's read of the record and of its operations. The record is stale, as after a lost ETag race.
  if (operations.some(({ value: op }) => op.status === 'Synced' || isFinal(op))) return 'conflict';

  // The marker goes in before any feed time is stamped, so readers hold back until this round has published.
  // If the round throws, the marker stays: the commit may have landed without its feed entries, and the
  // sync-pending job writes them from the operations the marker names before it removes the marker.
  const marker = await store.feedInFlight.begin(
    customerKey,
    ctx.clock(),
    operations[0]!.value.seq,
    operations.at(-1)!.value.seq,
  );
  const round = await applyOperations(ctx, record, operations, run);
  await store.feedInFlight.end(marker);
  return round;
}

async function applyOperations(
  ctx: SyncContext,
  record: Versioned<CustomerRecord>,
  operations: Versioned<Operation>[],
  run: Run,
): Promise<Round> {
  const { store } = ctx;
  // This round's outcome, added to the run's once it is committed (a lost race counts nothing).
  const result: Omit<ProcessResult, 'customerKey' | 'operationIds'> = { applied: 0, failed: 0, waiting: 0 };
  const counted = (round: Round): Round => {
    for (const t of touched) run.result.operationIds.push(t.value.operationId);
    run.result.applied += result.applied;
    run.result.failed += result.failed;
    run.result.waiting += result.waiting;
    if (result.retryAt) run.result.retryAt = result.retryAt;
    return round;
  };
  const at = ctx.clock().toISOString();
  const next: CustomerRecord = { ...record.value };
  // Every email the customer had in this round: those it no longer has after the commit are released.
  const emailsHeld = new Set<string>();
  const holdEmail = () => {
    if (next.customer) emailsHeld.add(normalizeEmail(next.customer.email));
  };
  holdEmail();
  const touched: Versioned<Operation>[] = [];
  const feed: FeedEntry[] = [];
  let blocker: Operation | undefined;
  /** An operation applied (its changes already in `next`): a new version, the operation Synced, a feed entry. */
  const apply = (stored: Versioned<Operation>, customer: Customer, grid: AttributeChange[]) => {
    const op = stored.value;
    next.version++;
    next.appliedThrough = op.seq;
    next.updatedAt = at;
    const { customerAccount, asyncCustomerAccount } = next;
    const application = { customer, customerAccount: customerAccount!, asyncCustomerAccount, grid };
    touched.push({ value: applied(op, application, at), etag: stored.etag });
    feed.push(feedEntry(next, op, at));
    result.applied++;
  };

  for (const stored of operations) {
    const op = stored.value;
    const write = (value: Operation) => touched.push({ value, etag: stored.etag });
    if (blocker) {
      const held = waiting(op, blocker, at);
      if (held) write(held);
      result.waiting++;
      continue;
    }
    if (op.status === 'Failed' || (op.nextAttemptAt && op.nextAttemptAt > at)) {
      if (op.status !== 'Failed') result.retryAt = op.nextAttemptAt;
      blocker = op;
      continue;
    }

    const refusal = checkExistence(next, op.type);
    if (refusal) {
      write(failed(op, refusal, op.grid, at));
      next.appliedThrough = op.seq; // final: settled, holding nothing back (see isFinal)
      result.failed++;
      continue;
    }
    if (op.type === 'Delete') {
      // The record stays, with its accounts and operations; the customer goes, remembered for the feed. (It is
      // there: the create before this operation has been applied, as operations apply in order.)
      const customer = next.customer!;
      next.customer = undefined;
      next.deleted = true;
      next.deletedAt = at;
      next.deletedCustomer = customer;
      apply(stored, customer, deletionGrid(customer));
      continue;
    }

    let verdict: Evaluation;
    try {
      verdict = evaluate(next.customer, op.changes, ctx.hq);
      if (verdict.ok) {
        const emailInUse = await takeEmail(ctx, next, verdict.customer.email, op.seq);
        if (emailInUse) verdict = { ok: false, violation: emailInUse, grid: verdict.grid };
        else if (!next.customerAccount) {
          run.allocatedAccount ??= await store.accountNumbers.nextAccount();
          // Written before the commit: a crash leaves an index entry for an account nobody holds, which
          // lookups reject (they check the record), never a customer that cannot be found.
          await store.accounts.put(run.allocatedAccount, next.customerKey);
        }
      }
    } catch (error) {
      // Nothing is committed yet: charge the attempt to this operation and retry it later.
      return recordTransientFailure(ctx, record, stored, error, run);
    }
    if (!verdict.ok) {
      blocker = failed(op, verdict.violation, verdict.grid, at);
      write(blocker);
      result.failed++;
      continue;
    }

    next.customerAccount ??= run.allocatedAccount!;
    next.customer = verdict.customer;
    // A create of a deleted customer is a restore: it is back.
    delete next.deleted;
    delete next.deletedAt;
    delete next.deletedCustomer;
    holdEmail();
    apply(stored, verdict.customer, verdict.grid);
  }

  if (touched.length === 0) return counted('done');
  try {
    // The one span of a round's storage work: the commit is what makes the outcome real (and a lost race, here).
    const attributes = {
      [attr.customerKey]: next.customerKey,
      [attr.operationIds]: touched.map((t) => t.value.operationId),
    };
    await inSpan('commit', { attributes }, () => store.customers.commit({ value: next, etag: record.etag }, touched));
  } catch (error) {
    if (isWriteConflict(error)) return 'conflict';
    throw error;
  }

  // After the commit, errors propagate and leave the round's marker for the sync-pending job to repair from
  // (feed and index entries alike).
  const emailNow = next.customer && normalizeEmail(next.customer.email);
  const before = new Map(operations.map((o) => [o.value.seq, o.value.lastError]));
  await Promise.all([
    store.feed.append(feed),
    ...touched.map((t) => store.operationIndex.update(t.value, before.get(t.value.seq))),
    ...[...emailsHeld].filter((email) => email !== emailNow).map((email) => releaseEmail(ctx, email, next.customerKey)),
  ]);
  return counted(operations.length === BATCH && !blocker ? 'more' : 'done');
}

/**
 * The feed entry of an applied operation. A deletion's names the customer as it was (the record keeps it for
 * an entry written again after a crash, which otherwise carries the customer as it is then).
 */
export const feedEntry = (
  record: CustomerRecord,
  op: Pick<Operation, 'seq' | 'type'>,
  changedAt: string,
): FeedEntry => ({
  customerKey: record.customerKey,
  seq: op.seq,
  customerAccount: record.customerAccount!,
  asyncCustomerAccount: record.asyncCustomerAccount,
  customer: (record.customer ?? record.deletedCustomer)!,
  ...(op.type === 'Delete' ? { deleted: true } : {}),
  changedAt,
});

/** Claims the customer's email for this operation; the violation if another customer holds it. */
async function takeEmail(
  ctx: SyncContext,
  record: CustomerRecord,
  newEmail: string,
  seq: number,
): Promise<HqViolation | undefined> {
  const email = normalizeEmail(newEmail);
  if (record.customer && normalizeEmail(record.customer.email) === email) return undefined;
  if (await claimEmail(ctx, email, record.customerKey, seq)) return undefined;
  return { code: 'EMAIL_IN_USE', message: `Email '${email}' belongs to another HQ customer.` };
}

/**
 * Claims an email unless another customer holds it. A claim is stale — and may be taken over — when its
 * holder neither uses the email nor has the claiming operation still to apply. A claim this customer already
 * holds is rewritten, which changes its ETag, so a release racing from an earlier round cannot delete it.
 */
async function claimEmail(ctx: SyncContext, email: string, customerKey: string, seq: number): Promise<boolean> {
  const claims = ctx.store.emailClaims;
  // Most emails are new: try to insert first and only read the claim when someone has one.
  if (await claims.claim(email, customerKey, seq)) return true;
  for (let attempt = 0; attempt < 5; attempt++) {
    const claim = await claims.get(email);
    if (claim && claim.customerKey !== customerKey && !(await isStaleClaim(ctx, email, claim.customerKey, claim.seq))) {
      return false;
    }
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
 * An unexpected error before the commit (storage unavailable, throttled, ...) is retried with exponential
 * backoff: the operation being applied records the attempt and when to try again — in a transaction guarded by
 * the record's ETag, so nothing is charged if another processor moved the customer on meanwhile — and a
 * scheduled doorbell plus the pending index make sure it is tried. After the configured attempts it becomes
 * Failed for an operator to resync. If even recording fails, the error propagates and the broker redelivers.
 */
async function recordTransientFailure(
  ctx: SyncContext,
  record: Versioned<CustomerRecord>,
  stored: Versioned<Operation>,
  error: unknown,
  run: Run,
): Promise<Round> {
  const message = error instanceof Error ? error.message : String(error);
  ctx.log(`Applying an operation failed, will retry: ${message}`, {
    operationId: stored.value.operationId,
    customerKey: stored.value.customerKey,
  });
  const now = ctx.clock();
  const op = attemptFailed(stored.value, message, now, ctx.retry);
  try {
    await ctx.store.customers.commit(record, [{ value: op, etag: stored.etag }]);
  } catch (commitError) {
    if (isWriteConflict(commitError)) return 'conflict';
    throw commitError;
  }
  await ctx.store.operationIndex.update(op, stored.value.lastError);
  run.result.operationIds.push(op.operationId);
  if (op.nextAttemptAt) {
    run.result.retryAt = op.nextAttemptAt;
    const pending = await ctx.store.pending.mark(op.customerKey, now, op.nextAttemptAt);
    await ctx.doorbell.ring([{ customerKey: op.customerKey, pending }], new Date(op.nextAttemptAt));
  } else {
    run.result.failed++;
  }
  return 'done';
}
