import {
  applyChanges,
  attributeGrid,
  type AttributeValue,
  type Changes,
  customerDisplayName,
  unflatten,
} from './changes';
import { type Customer, customerPatchSchema, customerSchema } from './customer';
import { DomainError, fieldErrors } from './errors';
import { FINAL_VIOLATIONS } from './hq-rules';
import { type Operation, operationIdOf, type OperationStatus, type OperationType } from './operation';

/**
 * An operation's lifecycle, in one place. Every change of status goes through one of these transitions, and
 * each one owns what an operator reads about it: the status, the history entry, the change description and
 * the last known error. They are pure: each returns a new operation and leaves its input as it was, so a use
 * case can still write the old version's ETag and entries next to the new one. A transition from another
 * status than the one it starts from is refused with INVALID_STATE.
 *
 *   accepted ──▶ Pending ──applied──▶ Synced
 *                  │ ▲ ╲──failed / attemptFailed (last attempt)──▶ Failed ──edited──▶ Failed
 *   waiting, ──────┘ │                                                │
 *   attemptFailed    └───────────────────resynced─────────────────────┘
 *
 * A failure is final (not edited, not resynced) when it is about the customer's existence (isFinal).
 */

export interface Submission {
  customerKey: string;
  seq: number;
  type: OperationType;
  channel: string;
  /** Who submitted it (the token's subject). */
  by?: string;
  changes: Changes;
  requestId: string;
  /** The customer's accounts as known at submit time (a create's async customer account is its key). */
  asyncCustomerAccount?: string;
  customerAccount?: string;
}

/** A channel's create or edit, accepted: Pending until the processor applies it. */
export function accepted(submission: Submission, at: string): Operation {
  const { customerKey, seq, type, channel, by, changes, requestId, asyncCustomerAccount, customerAccount } = submission;
  return {
    requestId,
    operationId: operationIdOf(customerKey, seq),
    customerKey,
    seq,
    channel,
    type,
    ...(asyncCustomerAccount ? { asyncCustomerAccount } : {}),
    ...(customerAccount ? { customerAccount } : {}),
    operationTimestamp: at,
    status: 'Pending',
    changeDescription: `${submitted({ type, seq, changes })} submitted by channel ${channel}; waiting to be applied to HQ.`,
    changes,
    grid: attributeGrid(undefined, changes),
    attempts: 0,
    history: [{ at, status: 'Pending', detail: `Submitted by channel ${channel}.`, by }],
  };
}

/** What applying an operation to HQ produced. */
export interface Application {
  /** The customer as applied; for a deletion, as it was (whom the deletion removed). */
  customer: Customer;
  customerAccount: string;
  asyncCustomerAccount?: string;
  /** The attribute grid against the customer as it was before. */
  grid: Operation['grid'];
}

/** Applied to the HQ customer master. */
export function applied(op: Operation, result: Application, at: string): Operation {
  expectStatus(op, 'Pending', 'applied');
  const who = `${result.customer.customerType.toLowerCase()} '${customerDisplayName(result.customer)}'`;
  const changeDescription = {
    Create: `${isRestore(op) ? 'Restored' : 'Created'} ${who} as customer ${result.customerAccount}.`,
    Update: `Changed ${listed(Object.keys(op.changes))} of customer ${result.customerAccount}.`,
    Delete: `Deleted customer ${result.customerAccount} (${who}).`,
  }[op.type];
  const next = attempted(op, result.grid);
  next.status = 'Synced';
  next.customerAccount = result.customerAccount;
  next.asyncCustomerAccount = result.asyncCustomerAccount;
  next.appliedAt = at;
  next.waitingOn = undefined;
  next.lastError = undefined;
  next.changeDescription = changeDescription;
  next.history.push({ at, status: 'Synced', detail: changeDescription });
  return next;
}

/** Refused by an HQ rule: Failed until an operator repairs and resyncs it. */
export function failed(
  op: Operation,
  refusal: { code: string; message: string },
  grid: Operation['grid'],
  at: string,
): Operation {
  expectStatus(op, 'Pending', 'refused');
  const next = toFailed(attempted(op, grid), refusal, at);
  next.changeDescription = `Failed: ${refusal.message}`;
  next.history.push({ at, status: 'Failed', detail: refusal.message });
  return next;
}

/**
 * An unexpected error (storage unavailable, throttled, ...) while applying: retried with exponential backoff
 * from `retry.baseDelayMs`, and Failed once `retry.maxAttempts` attempts have failed.
 */
export function attemptFailed(
  op: Operation,
  message: string,
  now: Date,
  retry: { maxAttempts: number; baseDelayMs: number },
): Operation {
  expectStatus(op, 'Pending', 'retried');
  const at = now.toISOString();
  const next = structuredClone(op);
  next.attempts++;
  if (next.attempts >= retry.maxAttempts) {
    toFailed(next, { code: 'TRANSIENT_ERROR', message }, at);
    next.changeDescription = `Failed after ${next.attempts} attempts: ${message}`;
    next.history.push({ at, status: 'Failed', detail: next.changeDescription });
    return next;
  }
  next.lastError = { code: 'TRANSIENT_ERROR', message, at };
  next.nextAttemptAt = new Date(now.getTime() + retry.baseDelayMs * 2 ** (next.attempts - 1)).toISOString();
  next.history.push({
    at,
    status: 'Pending',
    detail: `Attempt ${next.attempts} failed (${message}); retry at ${next.nextAttemptAt}.`,
  });
  return next;
}

/**
 * Held back behind an earlier operation of the same customer that failed or waits for a retry: still Pending,
 * saying what it waits on. Undefined when it already says exactly that (nothing to write).
 */
export function waiting(op: Operation, blocker: Operation, at: string): Operation | undefined {
  expectStatus(op, 'Pending', 'held back');
  const blockerFailed = blocker.status === 'Failed';
  const reason = blockerFailed
    ? `Waiting for operation ${blocker.operationId} (${blocker.type}), which failed: ${blocker.lastError?.message ?? 'unknown error'}`
    : `Waiting for operation ${blocker.operationId} (${blocker.type}), which is retried at ${blocker.nextAttemptAt}.`;
  if (op.waitingOn === blocker.operationId && op.changeDescription === reason) return undefined;
  const next = structuredClone(op);
  next.waitingOn = blocker.operationId;
  next.changeDescription = reason;
  if (blockerFailed) next.lastError = { code: 'WAITING_FOR_OPERATION', message: reason, at };
  next.history.push({ at, status: 'Pending', detail: reason });
  return next;
}

/**
 * A failure about the customer's existence — an edit or deletion of a deleted customer, a restore of one that
 * exists — is final: no repair of values changes it, so the processor counts the operation as settled and
 * goes on with the later ones (it holds nothing back), and it is neither edited nor resynced. After a
 * restore, the change is submitted again.
 */
export const isFinal = (op: Pick<Operation, 'status' | 'lastError'>): boolean =>
  op.status === 'Failed' && (FINAL_VIOLATIONS as readonly string[]).includes(op.lastError?.code ?? '');

/** An operator resyncs a Failed operation: Pending again, keeping its last error until it is applied. */
export function resynced(op: Operation, by: string, at: string): Operation {
  expectStatus(op, 'Failed', 'resynced');
  expectRepairable(op, 'resynced');
  const next = structuredClone(op);
  next.status = 'Pending';
  next.nextAttemptAt = undefined;
  next.waitingOn = undefined;
  next.changeDescription = `Resync requested; waiting to be applied to HQ (last error: ${op.lastError?.code ?? 'none'}).`;
  next.history.push({ at, status: 'Pending', detail: 'Resync requested.', by });
  return next;
}

/**
 * An operator edits new values of a Failed operation. The edit is validated as a submit is (a create must stay
 * a whole customer, an edit a valid patch) and recorded in the history with old → new per attribute; the
 * values the channel submitted are kept as `submitted` on the first edit, so nothing the channel sent is lost.
 */
export function edited(op: Operation, edits: Changes, by: string, at: string): Operation {
  expectStatus(op, 'Failed', 'edited');
  expectRepairable(op, 'edited');
  if (op.type === 'Delete') {
    throw new DomainError('INVALID_STATE', 'A deletion has no values to edit; resync it instead.');
  }
  const changes = validChanges(op.type, { ...op.changes, ...edits });
  const next = structuredClone(op);
  next.submitted ??= op.changes;
  next.changes = changes;
  const oldValues = new Map(op.grid.map((row) => [row.name, row.oldValue] as const));
  next.grid = attributeGrid(undefined, changes).map((row) => ({ ...row, oldValue: oldValues.get(row.name) ?? null }));
  const rows = Object.keys(edits).map((name) => ({
    name,
    oldValue: op.changes[name] ?? null,
    newValue: changes[name] ?? null,
  }));
  const described = rows.map((row) => `${row.name}: ${show(row.oldValue)} → ${show(row.newValue)}`);
  next.history.push({ at, status: 'Failed', detail: `Edited ${described.join('; ')}`, by, edits: rows });
  return next;
}

function expectStatus(op: Operation, status: OperationStatus, transition: string): void {
  if (op.status !== status) {
    throw new DomainError(
      'INVALID_STATE',
      `Only a ${status} operation can be ${transition}; this one is ${op.status}.`,
    );
  }
}

function expectRepairable(op: Operation, transition: string): void {
  if (isFinal(op)) {
    throw new DomainError(
      'INVALID_STATE',
      `This operation cannot be ${transition}: ${op.lastError!.message} No repair of its values changes that, so its failure is final.`,
    );
  }
}

/** One more attempt at applying, with the attribute grid it produced. */
function attempted(op: Operation, grid: Operation['grid']): Operation {
  const next = structuredClone(op);
  next.attempts++;
  next.nextAttemptAt = undefined;
  next.grid = grid;
  return next;
}

/** Failed, no longer waiting on anything nor retried: an operator's turn. */
function toFailed(op: Operation, error: { code: string; message: string }, at: string): Operation {
  op.status = 'Failed';
  op.nextAttemptAt = undefined;
  op.waitingOn = undefined;
  op.lastError = { code: error.code, message: error.message, at };
  return op;
}

/**
 * Edited changes must make what a submit would accept: a create a whole customer (null removes a field), an
 * edit a valid patch (null removes the field from the customer when applied).
 */
function validChanges(type: OperationType, changes: Changes): Changes {
  const result =
    type === 'Create'
      ? customerSchema.safeParse(applyChanges(undefined, changes))
      : customerPatchSchema.safeParse(unflatten(changes));
  if (!result.success) {
    const errors = Object.fromEntries(
      Object.entries(fieldErrors(result.error)).map(([path, messages]) => [`attributes.${path}`, messages]),
    );
    throw new DomainError('VALIDATION_FAILED', 'The edited operation would not be a valid customer.', errors);
  }
  return type === 'Create' ? Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== null)) : changes;
}

/** A create after the customer's first operation re-creates a deleted customer (submitRestore). */
const isRestore = (op: Pick<Operation, 'type' | 'seq'>) => op.type === 'Create' && op.seq > 1;

/** What an accepted operation asks for, as its change description starts. */
function submitted(op: Pick<Operation, 'type' | 'seq' | 'changes'>): string {
  if (op.type === 'Update') return `Edit of ${Object.keys(op.changes).join(', ')}`;
  if (op.type === 'Delete') return 'Delete';
  return isRestore(op) ? 'Restore' : 'Create';
}

const listed = (names: string[]) =>
  names.slice(0, 5).join(', ') + (names.length > 5 ? ` and ${names.length - 5} more` : '');

const show = (value: AttributeValue) => (value === null ? '(none)' : JSON.stringify(value));
