import { createHash } from 'node:crypto';

import { v5 as uuidv5 } from 'uuid';

import { sameError, type SyncError, type SyncLogEntry, type SyncRecord } from '../domain/coupling';
import type { CustomerRecord } from '../domain/operation';
import type { SyncErrorEntry } from '../domain/ports';
import type { Versioned } from '../domain/versioned';
import type { SyncContext } from '../operations/context';

/**
 * A CRM row created for an HQ customer gets a name-based UUID of the customer key (DESIGN.md §8): a retry
 * after a crash finds the row it created instead of creating a second.
 */
const NAMESPACE = 'b7a4f3c2-5d1e-4c8a-9f6b-2e3d4c5b6a70';
export const rowIdFor = (customerKey: string) => uuidv5(customerKey, NAMESPACE);

export const hash = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('base64url');

/** The customer as a coupled record sees it: alive, deleted, or not (yet) applied. */
export const isAlive = (
  r: CustomerRecord | undefined,
): r is CustomerRecord & Required<Pick<CustomerRecord, 'customer'>> => Boolean(r?.customer) && !r?.deleted;

export const accountOf = (r: Pick<SyncRecord, 'customerAccount' | 'asyncCustomerAccount' | 'customerKey'>) =>
  r.customerAccount ?? r.asyncCustomerAccount ?? r.customerKey;

export function errorEntry(record: SyncRecord & { error: SyncError }): SyncErrorEntry {
  return {
    ...record.error,
    customerKey: record.customerKey,
    customerAccount: accountOf(record),
    crmTable: record.crmTable,
    crmId: record.crmId ?? record.error.crmId ?? '',
    skipped: record.skipped,
  };
}

/**
 * Saves a sync record (guarded by the ETag it was read with) and keeps the error list in step. The new
 * error's list entry is written first and the old one removed last: a crash in between leaves an extra entry,
 * which the next run drops because the record does not hold that error, never an error nobody can see.
 */
export async function saveRecord(ctx: SyncContext, next: SyncRecord, stored?: Versioned<SyncRecord>): Promise<string> {
  const before = stored?.value.error;
  if (next.error) await ctx.store.syncErrors.put(errorEntry(next as SyncRecord & { error: SyncError }));
  const etag = await ctx.store.syncRecords.save(next, stored?.etag);
  const moved = before && (!next.error || before.kind !== next.error.kind || before.failedOn !== next.error.failedOn);
  if (moved) await ctx.store.syncErrors.remove({ ...before, customerKey: next.customerKey });
  return etag;
}

/**
 * The record with an error recorded: the same error as last time is a repeat, and a second one in a row
 * marks the record skipped (left out of runs until Retry), as Business Central does. A transient failure (the
 * CRM unreachable, throttled past the budget) is never a repeat: it says nothing about the record.
 */
export function withError(
  record: SyncRecord,
  error: Omit<SyncError, 'failedOn'>,
  at: string,
  transient = false,
): SyncRecord {
  const next: SyncError = { ...error, failedOn: at };
  const repeats = !transient && sameError(record.error, next) ? record.repeats + 1 : 1;
  return withoutClaim({
    ...record,
    error: next,
    repeats,
    skipped: !transient && repeats >= 2,
    lastSyncedAt: at,
    lastSyncResult: 'Failure',
  });
}

/**
 * An operator action stays on the record once done: it answers a repeat of its request (one naming the error it
 * settled, if a newer error came since). A claim is dropped by whatever synchronizes the record instead (an
 * action that died halfway, or found the apps changed).
 */
const withoutClaim = (record: SyncRecord): SyncRecord => {
  if (record.action && !record.action.done) {
    const { action: _claim, ...rest } = record;
    return rest;
  }
  return record;
};

/** The record after a successful synchronization: no error, nothing skipped (and no claim, see withoutClaim). */
export function withSuccess(record: SyncRecord, at: string): SyncRecord {
  const next = { ...record, repeats: 0, skipped: false, lastSyncedAt: at, lastSyncResult: 'Success' as const };
  delete next.error;
  return withoutClaim(next);
}

export async function appendLog(ctx: SyncContext, customerKey: string, ...entries: SyncLogEntry[]): Promise<void> {
  if (entries.length > 0) await ctx.store.syncLog.append(customerKey, entries);
}
