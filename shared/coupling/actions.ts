import {
  ACTION_CLAIM_MS,
  type ActionRequest,
  ACTIONS_FOR,
  isCoupled,
  isSettling,
  sameRequest,
  type SyncError,
  type SyncErrorKind,
  type SyncRecord,
} from '../domain/coupling';
import { BudgetSpent, type CrmRow } from '../domain/crm';
import { crmSnapshot, MAPPINGS } from '../domain/crm-mapping';
import { DomainError } from '../domain/errors';
import type { CustomerRecord } from '../domain/operation';
import { isWriteConflict, type Versioned } from '../domain/versioned';
import { findCustomer } from '../operations/accounts';
import type { SyncContext } from '../operations/context';
import { resyncOperation } from '../operations/repair';
import { appendLog, isAlive, saveRecord } from './records';
import { couplingSettings } from './settings';
import {
  applyDecision,
  type Coupled,
  decidePair,
  hqAhead,
  mapBounded,
  settleDeletion,
  syncPair,
  SyncRun,
} from './sync';

export interface ActionAnswer {
  /** The HQ operation the action submitted, when there is one. */
  operationId?: string;
}

/**
 * An operator's repair action on one record's sync error (API.md *Coupled data synchronization errors*).
 *
 * Offered only where it fits the error's kind (INVALID_STATE elsewhere; NOT_FOUND without an error). An action
 * that touches an app first claims the record (an ETag-guarded write), so of two operators acting at once one
 * wins and the other is told; every write it then makes is conditional or idempotent, so a repeat after a crash
 * does nothing twice. Done, it stays on the record: the same request again gets the same answer.
 *
 * Before writing, both apps are read again: if either changed since the error was recorded, nothing is written
 * blindly; the record is synchronized as a run would, and SYNC_ERROR_CHANGED says so (the error, if any, is new).
 */
export async function settleSyncError(
  ctx: SyncContext,
  account: string,
  request: ActionRequest,
  by?: string,
): Promise<ActionAnswer> {
  const settings = couplingSettings(ctx);
  const { value: customer } = await findCustomer(ctx.store, account);
  for (let attempt = 0; attempt < 5; attempt++) {
    const stored = await ctx.store.syncRecords.get(customer.customerKey);
    const record = stored?.value;
    const taken = record?.action;
    const chosenOn = 'failedOn' in request ? request.failedOn : undefined;
    // Done already (a double click, a client's retry): the same answer, also if a newer error came since.
    if (taken?.done && sameRequest(taken, request) && (!record?.error || chosenOn))
      return taken.operationId ? { operationId: taken.operationId } : {};
    if (!stored || !record?.error) {
      throw new DomainError('NOT_FOUND', `Customer '${account}' has no synchronization error.`);
    }
    if (chosenOn && chosenOn !== record.error.failedOn) {
      throw new DomainError(
        'SYNC_ERROR_CHANGED',
        `The error chosen on (recorded ${chosenOn}) is no longer the record's error; it now shows: ${record.error.message}`,
      );
    }
    if (isSettling(record, ctx.clock())) {
      throw new DomainError(
        'INVALID_STATE',
        `${taken!.by ?? 'Another operator'} is settling this error right now (${taken!.action}); look again in a moment.`,
      );
    }
    const { kind } = record.error;
    if (!ACTIONS_FOR[kind].includes(request.action)) {
      throw new DomainError(
        'INVALID_STATE',
        `${request.action} does not fit a ${kind} error; it offers ${ACTIONS_FOR[kind].join(', ')}.`,
      );
    }
    // An action's CRM requests end well within its claim, so a claim never lapses while its action still writes.
    const run = new SyncRun(ctx, { ...settings, budgetMs: Math.min(settings.budgetMs, ACTION_BUDGET_MS) }, { by });
    let claimed: Versioned<Coupled>;
    try {
      if (request.action === 'Retry') return await retry(run, stored as Versioned<SyncRecord & { error: SyncError }>);
      claimed = await claim(run, stored, request);
    } catch (error) {
      if (!isWriteConflict(error)) throw error;
      continue; // another operator, the sync job or an app changed the record meanwhile: look again
    }
    return settleClaimed(run, claimed, request);
  }
  throw new DomainError('INVALID_STATE', `The record of '${account}' kept changing; try again.`);
}

/** How long an action may wait for the CRM: half its claim. */
const ACTION_BUDGET_MS = ACTION_CLAIM_MS / 2;

/**
 * Carries out a claimed action. If an app changed between the action's reads and its conditional writes, the
 * record is synchronized afresh under the action's own claim (SYNC_ERROR_CHANGED). If the action fails
 * otherwise (the CRM unreachable), its claim is withdrawn, so that nobody waits for it to lapse.
 */
async function settleClaimed(run: SyncRun, claimed: Versioned<Coupled>, request: ActionRequest) {
  const { ctx } = run;
  try {
    return request.action === 'Synchronize'
      ? await synchronize(run, claimed, request.use)
      : await restoreOrDelete(run, claimed, request.action as 'Restore' | 'Delete');
  } catch (error) {
    const now = await ctx.store.syncRecords.get(claimed.value.customerKey);
    const ours = now?.value.action && !now.value.action.done && now.value.action.at === run.at;
    if (isWriteConflict(error) && now && ours) {
      const { hq, row } = await readBoth(run, now.value as Coupled);
      return refresh(run, now as Versioned<Coupled>, hq, row).catch((again: unknown) => {
        if (!isWriteConflict(again)) throw again;
        throw new DomainError('SYNC_ERROR_CHANGED', 'The record kept changing while it was settled; look again.');
      });
    }
    if (now && ours && !(error instanceof DomainError)) {
      const { action: _withdrawn, ...released } = now.value;
      await ctx.store.syncRecords.save(released, now.etag).catch(() => undefined); // it lapses otherwise
    }
    if (error instanceof BudgetSpent) {
      throw new DomainError('SERVICE_UNAVAILABLE', 'The CRM did not answer in time; nothing was settled. Try again.');
    }
    throw error;
  }
}

/** Marks the record as being settled by this action, before either app is touched. */
async function claim(run: SyncRun, stored: Versioned<SyncRecord>, request: ActionRequest) {
  run.action = {
    action: request.action,
    ...('use' in request ? { use: request.use } : {}),
    ...(run.by ? { by: run.by } : {}),
    at: run.at,
    failedOn: stored.value.error!.failedOn,
    done: false,
  };
  const value = { ...stored.value, action: run.action } as Coupled;
  const etag = await run.ctx.store.syncRecords.save(value, stored.etag);
  return { value, etag };
}

/**
 * Retry: the error and its `skipped` flag are cleared and the record is listed for the next run. An error about
 * an HQ operation from a CRM change that HQ refused retries that operation (Failed → Pending) too.
 */
async function retry(run: SyncRun, stored: Versioned<SyncRecord & { error: SyncError }>): Promise<ActionAnswer> {
  const { ctx } = run;
  const record = stored.value;
  if (record.awaiting) await resyncOperation(ctx, record.awaiting, run.actor);
  // Listed first: a crash before the record is saved leaves an extra look, never a cleared error nobody takes.
  await ctx.store.crmSyncState.await(record.customerKey);
  const next: SyncRecord = {
    ...record,
    repeats: 0,
    skipped: false,
    action: {
      action: 'Retry',
      ...(run.by ? { by: run.by } : {}),
      at: run.at,
      failedOn: record.error.failedOn,
      done: true,
    },
  };
  delete next.error;
  await saveRecord(ctx, next, stored);
  const detail = `Retry: the ${record.error.kind} error (${record.error.message}) was cleared; the next run synchronizes the record again.`;
  await appendLog(ctx, record.customerKey, run.log('ToCrm', 'Unchanged', detail));
  return {};
}

/** Both apps as they are now, and whether they are still as the error describes them. */
async function readBoth(run: SyncRun, record: Coupled) {
  const hq = await run.ctx.store.customers.getRecord(record.customerKey);
  const row = await run.crm.get(record.crmTable, record.crmId);
  return { hq, row };
}

/**
 * Synchronize (ModifiedInBoth): the chosen version's values of every differing field win. Only if the pair still
 * differs exactly as the error says: then the CRM write is conditional on the row's version and the HQ operation
 * on the customer's ETag, both as just read.
 */
async function synchronize(run: SyncRun, stored: Versioned<Coupled>, use: 'hq' | 'crm'): Promise<ActionAnswer> {
  const record = stored.value;
  const { hq, row } = await readBoth(run, record);
  if (!isAlive(hq?.value) || !row) return refresh(run, stored, hq, row);
  // HQ edits accepted but not applied yet were not part of the error: the operator has not seen them.
  if (await hqAhead(run.ctx, hq.value)) return refresh(run, stored, hq, row);
  const crmValues = crmSnapshot(MAPPINGS[record.crmTable], row.columns);
  const now = await decidePair(run, record, hq.value, crmValues, 'None');
  const same =
    now.kind === 'conflict' && JSON.stringify(now.differences) === JSON.stringify(record.error!.differences ?? []);
  if (!same) return refresh(run, stored, hq, row);
  const decision = await decidePair(run, record, hq.value, crmValues, use === 'hq' ? 'SendToCrm' : 'GetFromCrm');
  if (decision.kind !== 'write') throw new Error('A conflict policy always decides.');
  const operationId = await applyDecision(run, stored, hq.value, row, decision, 'ToCrm', hq.etag);
  return operationId ? { operationId } : {};
}

/**
 * Restore records / Delete records (DeletedInCrm, DeletedInHq): as the deletion policy of the same name would,
 * only if one side is still deleted and the other still exists.
 */
async function restoreOrDelete(
  run: SyncRun,
  stored: Versioned<Coupled>,
  action: 'Restore' | 'Delete',
): Promise<ActionAnswer> {
  const record = stored.value;
  const { hq, row } = await readBoth(run, record);
  const { kind, seen } = record.error!;
  // One side still deleted, and the other still as the error saw it (a version recorded with the error).
  const unchanged =
    kind === 'DeletedInCrm'
      ? isAlive(hq?.value) && !row && (seen?.hqVersion === undefined || hq.value.version === seen.hqVersion)
      : !isAlive(hq?.value) && row && (seen?.crmVersion === undefined || row.version === seen.crmVersion);
  if (!unchanged || !isCoupled(record)) return refresh(run, stored, hq, row);
  const operationId = await settleDeletion(run, stored, hq?.value, row, 'ToCrm', action);
  return operationId ? { operationId } : {};
}

/**
 * The apps are no longer as the error describes them: nothing is written blindly. The record is synchronized as a
 * run would (which may record a new error, or find the pair in sync) and the operator is told to look again.
 */
async function refresh(
  run: SyncRun,
  stored: Versioned<Coupled>,
  hq: Versioned<CustomerRecord> | undefined,
  row: CrmRow | undefined,
): Promise<never> {
  delete run.action; // the run's own synchronization, not the operator's choice
  const change = { direction: 'ToCrm' as const, crmRow: row, crmDeleted: !row, recheck: true };
  await syncPair(run, stored, hq?.value, change, hq?.etag);
  const after = (await run.ctx.store.syncRecords.get(stored.value.customerKey))?.value.error;
  throw new DomainError(
    'SYNC_ERROR_CHANGED',
    `The record changed in ${after ? 'one or both apps' : 'an app'} since its error was recorded, so nothing was ` +
      `overwritten. ${after ? `It now shows: ${after.message}` : 'The two now agree: no error is left.'}`,
  );
}

/**
 * Retry all (optionally of one kind): every listed error that Retry fits (not a deletion: Restore or Delete
 * settles those), whose record still has it and that no operator is settling, is retried, `parallelism` at a
 * time. A record changed meanwhile is left as it now is.
 */
export async function retryAll(ctx: SyncContext, kind: SyncErrorKind | undefined, by?: string) {
  const settings = couplingSettings(ctx);
  const retriable = (k: SyncErrorKind) => ACTIONS_FOR[k].includes('Retry');
  if (kind && !retriable(kind)) {
    throw new DomainError(
      'INVALID_STATE',
      `Retry does not fit ${kind} errors; they offer ${ACTIONS_FOR[kind].join(', ')}.`,
    );
  }
  const run = new SyncRun(ctx, settings, { by });
  let accepted = 0;
  let after: string | undefined;
  do {
    const page = await ctx.store.syncErrors.page(kind, 500, after);
    await mapBounded(page.items, settings.parallelism, async (entry) => {
      const stored = await ctx.store.syncRecords.get(entry.customerKey);
      const error = stored?.value.error;
      if (!stored || !error || error.kind !== entry.kind || error.failedOn !== entry.failedOn) {
        return ctx.store.syncErrors.remove(entry); // left by a crash between writes
      }
      if (!retriable(error.kind) || isSettling(stored.value, ctx.clock())) return; // a deletion is settled otherwise
      try {
        await retry(run, stored as Versioned<SyncRecord & { error: SyncError }>);
        accepted++;
      } catch (error) {
        if (!isWriteConflict(error)) throw error;
      }
    });
    after = page.next;
  } while (after);
  return { accepted };
}
