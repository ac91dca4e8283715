import { z } from 'zod';

import {
  ACTIONS_FOR,
  isCoupled,
  isSettling,
  type SyncErrorKind,
  type SyncLogDirection,
  type SyncLogEntry,
  type SyncRecord,
} from '../domain/coupling';
import type { CrmTable } from '../domain/crm-mapping';
import { DomainError, notFound } from '../domain/errors';
import type { Versioned } from '../domain/versioned';
import { findCustomer } from '../operations/accounts';
import type { SyncContext } from '../operations/context';
import { accountOf, appendLog, isAlive, saveRecord, withSuccess } from './records';
import { couplingSettings } from './settings';
import { couple, SyncRun } from './sync';

/** A coupling as the API shows it (API.md *Coupling with the CRM*). */
export function couplingOf(record: SyncRecord & { crmId: string }) {
  return {
    customerAccount: accountOf(record),
    ...(record.asyncCustomerAccount ? { asyncCustomerAccount: record.asyncCustomerAccount } : {}),
    crmTable: record.crmTable,
    crmId: record.crmId,
    coupledAt: record.coupledAt ?? '',
    ...(record.lastSyncedAt ? { lastSyncedAt: record.lastSyncedAt } : {}),
    ...(record.lastSyncResult ? { lastSyncResult: record.lastSyncResult } : {}),
    skipped: record.skipped,
  };
}

async function coupledRecord(ctx: SyncContext, account: string): Promise<Versioned<SyncRecord & { crmId: string }>> {
  const { value: customer } = await findCustomer(ctx.store, account);
  const stored = await ctx.store.syncRecords.get(customer.customerKey);
  if (!stored || !isCoupled(stored.value)) throw new DomainError('NOT_FOUND', `Customer '${account}' is not coupled.`);
  return stored as Versioned<SyncRecord & { crmId: string }>;
}

/**
 * The coupling, with the last synchronization each way (its time, result and job run), taken from the newest
 * lines of the record's synchronization log.
 */
export async function getCoupling(ctx: SyncContext, account: string) {
  const { value: record } = await coupledRecord(ctx, account);
  const { items } = await ctx.store.syncLog.page(record.customerKey, 50);
  const lastSync: Partial<Record<SyncLogDirection, Pick<SyncLogEntry, 'at' | 'result' | 'job' | 'run'>>> = {};
  for (const { direction, at, result, job, run } of items) {
    lastSync[direction] ??= { at, result, ...(job ? { job } : {}), ...(run ? { run } : {}) };
  }
  return { ...couplingOf(record), lastSync };
}

/**
 * Couples a customer with a CRM row by hand and synchronizes the pair at once (differing values become a
 * ModifiedInBoth error, or follow the conflict policy). Setting up the same coupling again changes nothing.
 */
export async function setCoupling(
  ctx: SyncContext,
  account: string,
  target: { crmTable: CrmTable; crmId: string },
  by?: string,
) {
  const settings = couplingSettings(ctx);
  const { value: customer } = await findCustomer(ctx.store, account);
  if (!isAlive(customer)) throw notFound('Customer', account, 'CUSTOMER_NOT_FOUND');
  const crmId = target.crmId.toLowerCase();
  const stored = await ctx.store.syncRecords.get(customer.customerKey);
  if (isCoupled(stored?.value)) {
    if (stored.value.crmId === crmId && stored.value.crmTable === target.crmTable) return couplingOf(stored.value);
    throw new DomainError('ALREADY_COUPLED', `Customer '${account}' is coupled with CRM row ${stored.value.crmId}.`);
  }
  const run = new SyncRun(ctx, settings, { by });
  const row = await run.crm.get(target.crmTable, crmId);
  if (!row) throw notFound(`CRM ${target.crmTable} row`, crmId);
  const ownerKey = await ctx.store.syncRecords.customerKeyOfRow(target.crmTable, crmId);
  const owner = ownerKey ? (await ctx.store.syncRecords.get(ownerKey))?.value : undefined;
  if (isCoupled(owner) && owner.crmId === crmId) {
    throw new DomainError('ALREADY_COUPLED', `CRM row ${crmId} is coupled with customer '${accountOf(owner)}'.`);
  }
  const record: SyncRecord = {
    ...(stored?.value ?? { customerKey: customer.customerKey, base: {}, repeats: 0, skipped: false }),
    customerAccount: customer.customerAccount,
    asyncCustomerAccount: customer.asyncCustomerAccount,
    crmTable: target.crmTable,
  };
  await couple(run, record, stored, row, `Coupled by hand${by ? ` by ${by}` : ''}:`);
  return getCoupling(ctx, account);
}

/**
 * Remove coupling: the pair is no longer synchronized, its error (if any) is closed, and automatic matching
 * leaves the two alone (the record stays, `decoupled`); a coupling set up by hand or a match run can couple them
 * again. A customer with an error but no coupling yet (several rows matched it, or its row was never recorded)
 * is taken out of automatic matching and inserting the same way.
 */
export async function removeCoupling(ctx: SyncContext, account: string, by?: string): Promise<void> {
  const { value: customer } = await findCustomer(ctx.store, account);
  const stored = await ctx.store.syncRecords.get(customer.customerKey);
  const record = stored?.value;
  if (!stored || !record || record.decoupled || (!isCoupled(record) && !record.error)) {
    throw new DomainError('NOT_FOUND', `Customer '${account}' is not coupled.`);
  }
  if (isSettling(record, ctx.clock())) {
    throw new DomainError(
      'INVALID_STATE',
      `${record.action!.by ?? 'Another operator'} is settling this record's error right now.`,
    );
  }
  const at = ctx.clock().toISOString();
  // No longer waiting for an HQ operation from a CRM change either: if it failed, it stays with the failed
  // operations, to be repaired (or not) on its own.
  const next: SyncRecord = { ...withSuccess(record, at), decoupled: true };
  delete next.awaiting;
  await saveRecord(ctx, next, stored);
  await ctx.store.crmSyncState.settled(record.customerKey);
  await appendLog(ctx, record.customerKey, {
    at,
    ...(by ? { by } : {}),
    direction: 'ToCrm',
    result: 'Uncoupled',
    detail: isCoupled(record)
      ? `Coupling with CRM ${record.crmTable} row ${record.crmId} removed.`
      : `Left out of automatic matching and inserting (it had a ${record.error!.kind} error).`,
  });
}

const tokenSchema = z.strictObject({ after: z.string().max(512) });
const encodeToken = (after: string | undefined) =>
  after === undefined ? undefined : Buffer.from(JSON.stringify({ after })).toString('base64url');
function decodeToken(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  try {
    return tokenSchema.parse(JSON.parse(Buffer.from(token, 'base64url').toString('utf8'))).after;
  } catch {
    throw new DomainError('VALIDATION_FAILED', 'The continuation token is not one this API gave out.', {
      continuationToken: ['is not valid'],
    });
  }
}

export async function syncLogPage(ctx: SyncContext, account: string, top: number, continuationToken?: string) {
  const after = decodeToken(continuationToken);
  const { value: customer } = await findCustomer(ctx.store, account);
  const page = await ctx.store.syncLog.page(customer.customerKey, top, after);
  return { items: page.items, ...(page.next ? { continuationToken: encodeToken(page.next) } : {}) };
}

export async function syncErrorsPage(
  ctx: SyncContext,
  kind: SyncErrorKind | undefined,
  top: number,
  continuationToken?: string,
) {
  const after = decodeToken(continuationToken);
  const page = await ctx.store.syncErrors.page(kind, top, after);
  return {
    items: page.items.map(({ customerKey: _key, ...entry }) => ({ ...entry, actions: ACTIONS_FOR[entry.kind] })),
    ...(page.next ? { continuationToken: encodeToken(page.next) } : {}),
  };
}
