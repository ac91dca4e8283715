import { describe, expect, it } from 'vitest';

import { DomainError } from '../../shared/domain/errors';
import {
  accepted,
  applied,
  attemptFailed,
  edited,
  failed,
  isFinal,
  resynced,
  type Submission,
  waiting,
} from '../../shared/domain/lifecycle';
import type { Operation } from '../../shared/domain/operation';

const T0 = '2026-11-30T10:00:00.000Z';
const T1 = '2026-11-30T10:00:01.000Z';
const customer = {
  customerType: 'Person' as const,
  firstName: 'Ann',
  lastName: 'Berg',
  email: 'ann@example.dk',
  customerGroup: 'Retail',
  currency: 'DKK',
};

const submission = (overrides: Partial<Submission> = {}): Submission => ({
  customerKey: 'ASYNC-0000000001',
  seq: 1,
  type: 'Create',
  channel: 'web',
  by: 'channel:web',
  changes: { ...customer },
  requestId: 'r1',
  asyncCustomerAccount: 'ASYNC-0000000001',
  ...overrides,
});

const grid = [{ name: 'email', oldValue: null, newValue: 'ann@example.dk' }];

/** Frozen to the last nested object: a transition that changed its input would throw. */
function frozen<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) frozen(inner);
    Object.freeze(value);
  }
  return value;
}
const refused = { code: 'CUSTOMER_GROUP_NOT_FOUND', message: "Customer group 'Nope' does not exist in HQ." };
const failedCreate = () => failed(accepted(submission(), T0), refused, grid, T1);
const retry = { maxAttempts: 3, baseDelayMs: 1000 };

describe('an operation’s lifecycle', () => {
  it('accepts a create as Pending, with its grid, description and first history entry', () => {
    const op = accepted(submission(), T0);
    expect(op).toMatchObject({
      operationId: 'ASYNC-0000000001-1',
      status: 'Pending',
      operationTimestamp: T0,
      asyncCustomerAccount: 'ASYNC-0000000001',
      attempts: 0,
      changeDescription: 'Create submitted by channel web; waiting to be applied to HQ.',
      history: [{ at: T0, status: 'Pending', detail: 'Submitted by channel web.', by: 'channel:web' }],
    });
    expect(op.grid).toContainEqual({ name: 'email', oldValue: null, newValue: 'ann@example.dk' });
    expect(op.customerAccount).toBeUndefined();
  });

  it('accepts an edit naming the fields it changes and the accounts the customer has', () => {
    const op = accepted(
      submission({ seq: 2, type: 'Update', changes: { phone: '+45 1', email: 'b@x.dk' }, customerAccount: 'C1' }),
      T0,
    );
    expect(op.changeDescription).toBe('Edit of phone, email submitted by channel web; waiting to be applied to HQ.');
    expect(op).toMatchObject({ operationId: 'ASYNC-0000000001-2', customerAccount: 'C1' });
  });

  it('applies: Synced, accounts set, waiting and last error cleared, one history entry, the attempt counted', () => {
    const waitingOp = {
      ...accepted(submission(), T0),
      waitingOn: 'X-1',
      lastError: { code: 'X', message: 'x', at: T0 },
    };
    const op = applied(
      waitingOp,
      { customer, customerAccount: 'C000000007', asyncCustomerAccount: 'ASYNC-0000000001', grid },
      T1,
    );
    expect(op).toMatchObject({
      status: 'Synced',
      customerAccount: 'C000000007',
      appliedAt: T1,
      attempts: 1,
      changeDescription: "Created person 'Ann Berg' as customer C000000007.",
      grid,
    });
    expect(op.waitingOn).toBeUndefined();
    expect(op.lastError).toBeUndefined();
    expect(op.history.at(-1)).toEqual({ at: T1, status: 'Synced', detail: op.changeDescription });
    expect(waitingOp.status).toBe('Pending'); // the input is left as it was
  });

  it('describes an applied edit by its first five fields and a count of the rest', () => {
    const changes = Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((k) => [`attributes.${k}`, 1]));
    const op = applied(
      accepted(submission({ type: 'Update', changes }), T0),
      { customer, customerAccount: 'C1', grid },
      T1,
    );
    expect(op.changeDescription).toBe(
      'Changed attributes.a, attributes.b, attributes.c, attributes.d, attributes.e and 2 more of customer C1.',
    );
  });

  it('accepts a deletion with no values, and applies it with the grid of everything the customer had', () => {
    const pending = accepted(
      submission({ seq: 3, type: 'Delete', channel: 'hq', by: 'operator', changes: {}, customerAccount: 'C1' }),
      T0,
    );
    expect(pending.changeDescription).toBe('Delete submitted by channel hq; waiting to be applied to HQ.');
    expect(pending.grid).toEqual([]);
    const deletionGrid = [{ name: 'email', oldValue: 'ann@example.dk', newValue: null }];
    const op = applied(pending, { customer, customerAccount: 'C1', grid: deletionGrid }, T1);
    expect(op).toMatchObject({ status: 'Synced', grid: deletionGrid });
    expect(op.changeDescription).toBe("Deleted customer C1 (person 'Ann Berg').");
  });

  it('a create after the first operation is a restore, and says so', () => {
    const pending = accepted(submission({ seq: 4, channel: 'crm', customerAccount: 'C1' }), T0);
    expect(pending.changeDescription).toBe('Restore submitted by channel crm; waiting to be applied to HQ.');
    const op = applied(pending, { customer, customerAccount: 'C1', grid }, T1);
    expect(op.changeDescription).toBe("Restored person 'Ann Berg' as customer C1.");
  });

  it('a failure about the customer’s existence is final: neither edited nor resynced', () => {
    const edit = accepted(submission({ seq: 2, type: 'Update', changes: { phone: '1' } }), T0);
    const deleted = failed(edit, { code: 'CUSTOMER_DELETED', message: 'Customer C1 was deleted in HQ.' }, [], T1);
    expect(deleted).toMatchObject({
      status: 'Failed',
      lastError: { code: 'CUSTOMER_DELETED' },
      changeDescription: 'Failed: Customer C1 was deleted in HQ.',
    });
    expect(isFinal(deleted)).toBe(true);
    expect(isFinal(failedCreate())).toBe(false);
    expect(() => resynced(deleted, 'op', T1)).toThrow(/cannot be resynced: Customer C1 was deleted in HQ\./);
    expect(() => edited(deleted, { phone: '2' }, 'op', T1)).toThrow(DomainError);
  });

  it('a failed deletion has no values to edit, but can be resynced', () => {
    const deletion = accepted(submission({ seq: 2, type: 'Delete', changes: {} }), T0);
    const op = attemptFailed(deletion, 'storage unavailable', new Date(T0), { ...retry, maxAttempts: 1 });
    expect(op.status).toBe('Failed');
    expect(() => edited(op, { phone: '1' }, 'op', T1)).toThrow(/no values to edit/);
    expect(resynced(op, 'op', T1).status).toBe('Pending');
  });

  it('fails on an HQ rule: Failed with the last error, the reason in the description and the history', () => {
    const op = failedCreate();
    expect(op).toMatchObject({
      status: 'Failed',
      attempts: 1,
      lastError: { ...refused, at: T1 },
      changeDescription: `Failed: ${refused.message}`,
    });
    expect(op.history.at(-1)).toEqual({ at: T1, status: 'Failed', detail: refused.message });
  });

  it('schedules a retry after an unexpected error, doubling the delay, and fails after the last attempt', () => {
    const now = new Date(T0);
    const first = attemptFailed(accepted(submission(), T0), 'storage unavailable', now, retry);
    expect(first).toMatchObject({
      status: 'Pending',
      attempts: 1,
      nextAttemptAt: '2026-11-30T10:00:01.000Z',
      lastError: { code: 'TRANSIENT_ERROR', message: 'storage unavailable', at: T0 },
    });
    expect(first.history.at(-1)?.detail).toBe(
      'Attempt 1 failed (storage unavailable); retry at 2026-11-30T10:00:01.000Z.',
    );
    const second = attemptFailed(first, 'storage unavailable', now, retry);
    expect(second.nextAttemptAt).toBe('2026-11-30T10:00:02.000Z');
    const last = attemptFailed(second, 'storage unavailable', now, retry);
    expect(last).toMatchObject({
      status: 'Failed',
      attempts: 3,
      changeDescription: 'Failed after 3 attempts: storage unavailable',
      lastError: { code: 'TRANSIENT_ERROR' },
    });
    expect(last.nextAttemptAt).toBeUndefined();
    expect(last.history.at(-1)).toMatchObject({ status: 'Failed', detail: last.changeDescription });
  });

  it('waits behind a failed operation, saying which and why, once', () => {
    const blocker = failedCreate();
    const edit = accepted(submission({ seq: 2, type: 'Update', changes: { phone: '1' } }), T0);
    const held = waiting(edit, blocker, T1)!;
    expect(held).toMatchObject({
      status: 'Pending',
      waitingOn: blocker.operationId,
      lastError: { code: 'WAITING_FOR_OPERATION' },
      changeDescription: `Waiting for operation ${blocker.operationId} (Create), which failed: ${refused.message}`,
    });
    expect(waiting(held, blocker, T1)).toBeUndefined(); // already says so: nothing to write
  });

  it('waits behind an operation whose retry is due later, keeping its own last error', () => {
    const blocker = attemptFailed(accepted(submission(), T0), 'timeout', new Date(T0), retry);
    const edit = accepted(submission({ seq: 2, type: 'Update', changes: { phone: '1' } }), T0);
    const held = waiting(edit, blocker, T1)!;
    expect(held.changeDescription).toContain(`which is retried at ${blocker.nextAttemptAt}.`);
    expect(held.lastError).toBeUndefined();
  });

  it('resyncs: Pending again, keeping the last error until applied, with who asked', () => {
    const op = resynced({ ...failedCreate(), waitingOn: 'X-1' }, 'operator', T1);
    expect(op).toMatchObject({
      status: 'Pending',
      lastError: { code: 'CUSTOMER_GROUP_NOT_FOUND' },
      changeDescription: 'Resync requested; waiting to be applied to HQ (last error: CUSTOMER_GROUP_NOT_FOUND).',
    });
    expect(op.waitingOn).toBeUndefined();
    expect(op.history.at(-1)).toEqual({ at: T1, status: 'Pending', detail: 'Resync requested.', by: 'operator' });
  });

  it('records an operator edit with old → new values and keeps what the channel submitted', () => {
    const before: Operation = failedCreate();
    const once = edited(before, { customerGroup: 'Wholesale' }, 'operator', T1);
    const twice = edited(once, { customerGroup: 'Retail', phone: '+45 2' }, 'operator', T1);
    expect(once.changes.customerGroup).toBe('Wholesale');
    expect(once.history.at(-1)).toMatchObject({
      status: 'Failed',
      detail: 'Edited customerGroup: "Retail" → "Wholesale"',
      by: 'operator',
      edits: [{ name: 'customerGroup', oldValue: 'Retail', newValue: 'Wholesale' }],
    });
    expect(twice.submitted).toEqual(before.changes); // the channel's values, not the first edit's
    expect(twice.grid).toContainEqual({ name: 'phone', oldValue: null, newValue: '+45 2' });
    expect(twice.status).toBe('Failed');
  });

  it('refuses an edit that would not make a valid customer, naming the attribute', () => {
    let error: unknown;
    try {
      edited(failedCreate(), { email: 'not-an-email' }, 'operator', T1);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({ code: 'VALIDATION_FAILED', errors: { 'attributes.email': expect.any(Array) } });
  });

  it('a null in an edit of a create removes the field from what will be created', () => {
    const op = edited(
      failedCreate(),
      { lastName: null, firstName: null, customerType: 'Organization', organizationName: 'Berg A/S' },
      'operator',
      T1,
    );
    expect(op.changes).not.toHaveProperty('lastName');
    expect(op.changes.organizationName).toBe('Berg A/S');
  });

  it('leaves its input as it was, whichever transition', () => {
    const pending = frozen(accepted(submission(), T0));
    const refusedOp = frozen(failedCreate());
    const application = { customer, customerAccount: 'C1', grid };
    expect(() => applied(pending, application, T1)).not.toThrow();
    expect(() => failed(pending, refused, grid, T1)).not.toThrow();
    expect(() => attemptFailed(pending, 'x', new Date(T1), retry)).not.toThrow();
    expect(() => waiting(pending, refusedOp, T1)).not.toThrow();
    expect(() => resynced(refusedOp, 'op', T1)).not.toThrow();
    expect(() => edited(refusedOp, { phone: '1' }, 'op', T1)).not.toThrow();
  });

  it('refuses a transition from a status it does not start from', () => {
    const pending = accepted(submission(), T0);
    const synced = applied(pending, { customer, customerAccount: 'C1', grid }, T1);
    const invalid = (transition: () => unknown) => {
      try {
        transition();
      } catch (error) {
        return error instanceof DomainError ? `${error.code}: ${error.message}` : String(error);
      }
      return 'allowed';
    };
    expect(invalid(() => edited(synced, { phone: '1' }, 'op', T1))).toBe(
      'INVALID_STATE: Only a Failed operation can be edited; this one is Synced.',
    );
    expect(invalid(() => resynced(pending, 'op', T1))).toMatch(/^INVALID_STATE/);
    expect(invalid(() => applied(synced, { customer, customerAccount: 'C1', grid }, T1))).toMatch(/^INVALID_STATE/);
    expect(invalid(() => failed(failedCreate(), refused, grid, T1))).toMatch(/^INVALID_STATE/);
    expect(invalid(() => waiting(synced, failedCreate(), T1))).toMatch(/^INVALID_STATE/);
  });
});
