import { applyChanges, type AttributeChange, unflatten } from '../domain/changes';
import {
  agreed,
  type ConflictPolicy,
  decide,
  type Decision,
  type DeletionPolicy,
  isCoupled,
  isSettling,
  type SyncActionTaken,
  type SyncLogDirection,
  type SyncLogEntry,
  type SyncRecord,
  type SyncResult,
} from '../domain/coupling';
import { BudgetSpent, type Crm, CrmRefused, type CrmRow } from '../domain/crm';
import {
  CRM_TABLES,
  crmSnapshot,
  type CrmTable,
  CUSTOMER_ACCOUNT,
  customerFromRow,
  hqSnapshot,
  MAPPINGS,
  type Snapshot,
  tableFor,
  toColumns,
  toHqChanges,
} from '../domain/crm-mapping';
import type { Customer } from '../domain/customer';
import { normalizeEmail } from '../domain/hq-rules';
import { isFinal } from '../domain/lifecycle';
import { CRM_CHANNEL, type CustomerRecord, parseOperationId } from '../domain/operation';
import type { CrmCursor } from '../domain/ports';
import { isWriteConflict, type Versioned } from '../domain/versioned';
import type { CouplingSettings, SyncContext } from '../operations/context';
import { readCustomerUpdates } from '../operations/queries';
import { submitCreate, submitDelete, submitEdit, submitRestore } from '../operations/submit';
import { attr, inSpan, SpanKind } from '../telemetry/tracing';
import { appendLog, hash, isAlive, rowIdFor, saveRecord, withError, withSuccess } from './records';

export const COUNT_KEYS = ['inserted', 'modified', 'deleted', 'unchanged', 'skipped', 'failed', 'coupled'] as const;
export type Counts = Record<(typeof COUNT_KEYS)[number], number>;
const zero = (): Counts => ({ inserted: 0, modified: 0, deleted: 0, unchanged: 0, skipped: 0, failed: 0, coupled: 0 });

/** What a run learned about one record, from either side. */
interface Change {
  /** The direction the record is counted under: ToCrm when HQ changed (or both did), else FromCrm. */
  direction: SyncLogDirection;
  crmRow?: CrmRow;
  crmDeleted?: boolean;
  /**
   * The CRM row the change is about (changed, or deleted), which the reverse index ties to this customer: the
   * record may not name it yet (a run stopped before recording the coupling), or name another row (a stale link).
   */
  linked?: { table: CrmTable; id: string };
  /** Look again even if nothing seems changed (an open error, an operation just applied, a new coupling). */
  recheck?: boolean;
  /** Released from waiting for an HQ operation: it leaves the awaiting list once it has been synchronized. */
  settle?: boolean;
}

/**
 * One run of the crm-sync job: both directions, each record at most once, with bounded parallelism and the
 * run's time budget. Nothing here is lost by a crash: cursors move only after what they cover is done, every
 * write is conditional or idempotent, and doing a record again finds it in sync and writes nothing.
 */
export class SyncRun {
  readonly directions = { ToCrm: zero(), FromCrm: zero() };
  readonly crm: Crm;
  readonly at: string;
  /** Set when something failed that only the CRM's changes can bring back: the delta links must not move on. */
  incomplete = false;
  private readonly deadline: number;

  /** The job whose run this is, or (for an operator's action or coupling by hand) who acts. */
  readonly job?: string;
  readonly by?: string;
  /** The operator action this run carries out: what settles the record records it as done. */
  action?: SyncActionTaken;

  constructor(
    readonly ctx: SyncContext,
    readonly settings: CouplingSettings,
    source: { job: string } | { by?: string },
  ) {
    const now = ctx.clock();
    this.at = now.toISOString();
    this.deadline = now.getTime() + settings.budgetMs;
    if ('job' in source) this.job = source.job;
    else this.by = source.by;
    this.crm = tracedWrites(settings.crm(this.deadline), this.job);
  }

  /** Who the HQ operations this run submits come from, in the audit trail's history. */
  get actor(): string {
    return this.by ?? this.job ?? 'operator';
  }

  /** The record synchronized; with the operator action this run carries out recorded as done. */
  succeeded(record: SyncRecord, operationId?: string): SyncRecord {
    const next = withSuccess(record, this.at);
    if (this.action) next.action = { ...this.action, done: true, ...(operationId ? { operationId } : {}) };
    return next;
  }

  get spent() {
    return Date.now() >= this.deadline;
  }

  count(direction: SyncLogDirection, key: keyof Counts) {
    this.directions[direction][key]++;
  }

  log(direction: SyncLogDirection, result: SyncResult, detail: string, fields?: AttributeChange[]): SyncLogEntry {
    return {
      at: this.ctx.clock().toISOString(),
      ...(this.job ? { job: this.job, run: this.at } : {}),
      ...(this.by ? { by: this.by } : {}),
      direction,
      result,
      detail,
      ...(fields && fields.length > 0 ? { fields } : {}),
    };
  }

  totals(): Counts {
    const total = zero();
    for (const key of COUNT_KEYS) total[key] = this.directions.ToCrm[key] + this.directions.FromCrm[key];
    return total;
  }

  /**
   * Runs `work` for each item, `parallelism` at a time; false if the budget ran out before all were done. If one
   * item's work throws, the other workers take nothing more and the error is thrown once they have all stopped:
   * nothing of a failed run goes on after it has ended (and released its lease).
   */
  async each<T>(items: Iterable<T>, work: (item: T) => Promise<void>): Promise<boolean> {
    let complete = true;
    await mapBounded([...items], this.settings.parallelism, async (item) => {
      if (!complete || this.spent) {
        complete = false;
        return;
      }
      try {
        await work(item);
      } catch (error) {
        if (!(error instanceof BudgetSpent)) throw error;
        complete = false;
      }
    });
    return complete;
  }
}

/**
 * The crm-sync job (DESIGN.md §8). In order:
 * 1. operations submitted from CRM changes earlier: applied ones, and ones refused for good (the customer was
 *    deleted), release their record; other failed ones are errors;
 * 2. records with an open error that is not skipped, to be tried again;
 * 3. the CRM's changes per table, from its delta link (a full read the first time, or once the link expired);
 * 4. HQ's changes from the customer feed, page by page.
 * A record found in several is done once, knowing both sides. The feed cursor moves after each page; the
 * delta links only when every CRM change is done, so a run cut short by its budget repeats them next time,
 * which finds the done ones in sync.
 */
export async function crmSync(run: SyncRun): Promise<{ message: string; complete: boolean }> {
  let complete: boolean;
  try {
    complete = await syncBothWays(run);
  } catch (error) {
    if (!(error instanceof BudgetSpent)) throw error;
    complete = false;
  }
  const message = complete ? 'Completed.' : 'Stopped: the run spent its time budget; the next run resumes.';
  return { message, complete };
}

async function syncBothWays(run: SyncRun): Promise<boolean> {
  const { ctx } = run;
  const state = ctx.store.crmSyncState;
  const cursor = await state.cursor();
  const work = new Map<string, Change>();
  const add = (key: string, change: Change) => {
    const known = work.get(key);
    const direction = known?.direction === 'ToCrm' ? 'ToCrm' : change.direction;
    work.set(key, { ...known, ...change, direction });
  };

  await settleAwaiting(run, add);
  await addOpenErrors(run, add);
  const syncAndSettle = async ([key, change]: readonly [string, Change]) => {
    await syncCustomer(run, key, change);
    // Not before: the CRM changes seen while the record waited were left for this look, and a run that stops
    // first leaves the record listed, so that the next run looks again. Unless it waits again.
    if (change.settle) {
      const record = (await ctx.store.syncRecords.get(key))?.value;
      if (!record?.awaiting && !isSettling(record, ctx.clock())) await state.settled(key);
    }
  };

  const deltaLinks: CrmCursor['deltaLinks'] = {};
  const newRows: { table: CrmTable; row: CrmRow }[] = [];
  for (const table of CRM_TABLES) {
    const changes = await run.crm.changes(table, cursor.deltaLinks[table]);
    deltaLinks[table] = changes.deltaLink;
    const firstRead = changes.full && !cursor.deltaLinks[table];
    const seen = new Set<string>();
    // One point read per row: looked up `parallelism` at a time (after an insert run, its own rows come back
    // here by the thousand), then taken in the order the CRM gave them.
    const ownerOf = (id: string) => ctx.store.syncRecords.customerKeyOfRow(table, id);
    const owners = await mapBounded(changes.rows, run.settings.parallelism, (row) => ownerOf(row.id));
    changes.rows.forEach((row, i) => {
      seen.add(row.id);
      const key = owners[i];
      if (key) add(key, { direction: 'FromCrm', crmRow: row, linked: { table, id: row.id } });
      // Rows that existed before the first run are not imported: match-based coupling is for those.
      else if (!firstRead) newRows.push({ table, row });
    });
    const deletedOwners = await mapBounded(changes.deleted, run.settings.parallelism, ownerOf);
    changes.deleted.forEach((id, i) => {
      const key = deletedOwners[i];
      if (key) add(key, { direction: 'FromCrm', crmDeleted: true, linked: { table, id } });
    });
    // After an expired delta link, a coupled row missing from the full read was deleted meanwhile.
    if (changes.full && !firstRead) {
      for await (const record of ctx.store.syncRecords.list()) {
        if (isCoupled(record) && record.crmTable === table && !seen.has(record.crmId)) {
          add(record.customerKey, { direction: 'FromCrm', crmDeleted: true });
        }
      }
    }
  }

  let feed = cursor.feed;
  for (;;) {
    const page = await readCustomerUpdates(ctx, feed);
    if (page.items.length === 0) {
      feed = page.cursor;
      break;
    }
    // A customer's key is its async customer account, which every feed item carries.
    const keys = new Set(page.items.flatMap((item) => item.asyncCustomerAccount ?? []));
    const pageWork = [...keys].map((key) => {
      const change: Change = { ...work.get(key), direction: 'ToCrm' };
      work.delete(key);
      return [key, change] as const;
    });
    if (!(await run.each(pageWork, syncAndSettle))) return false;
    feed = page.cursor;
    await state.saveCursor({ ...(await state.cursor()), feed });
  }

  if (!(await run.each(work, syncAndSettle))) return false;
  if (!(await run.each(newRows, ({ table, row }) => importRow(run, table, row)))) return false;
  if (!run.incomplete) await state.saveCursor({ feed, deltaLinks: { ...cursor.deltaLinks, ...deltaLinks } });
  return true;
}

/**
 * `work` over every item, at most `limit` at a time; the results in the items' order. After a failure no item is
 * started, and the error is thrown once the items in flight are done (like SyncRun.each): nothing of a failed run
 * goes on after it has ended.
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failure) {
      const i = next++;
      try {
        results[i] = await work(items[i]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
  return results;
}

/** Operations submitted from CRM changes: once applied, the record is synchronized again; failed, an error. */
async function settleAwaiting(run: SyncRun, add: (key: string, change: Change) => void): Promise<void> {
  const { ctx } = run;
  await run.each(await ctx.store.crmSyncState.awaiting(), async (key) => {
    const stored = await ctx.store.syncRecords.get(key);
    const record = stored?.value;
    const id = record?.awaiting && parseOperationId(record.awaiting);
    if (!stored || !record || record.decoupled) return ctx.store.crmSyncState.settled(key);
    // Released by a run that stopped before looking at it again.
    if (!id) return add(key, { direction: 'FromCrm', recheck: true, settle: true });
    const op = await ctx.store.customers.getOperationHead(id.customerKey, id.seq);
    // Applied, or refused for good because of the customer's existence (deleted meanwhile): either way HQ is
    // done with it, and the record is synchronized again (which then finds, say, the deletion).
    if (op?.status === 'Synced' || !op || isFinal(op)) {
      const next = { ...record, customerAccount: op?.customerAccount ?? record.customerAccount };
      delete next.awaiting;
      await saveRecord(ctx, next, stored);
      add(key, { direction: 'FromCrm', recheck: true, settle: true });
    } else if (op.status === 'Failed' && !record.skipped) {
      const message = `HQ refused the change from the CRM (operation ${op.operationId}): ${op.lastError?.message ?? op.changeDescription}`;
      const failed = withError(record, { kind: 'Failed', message, hqExists: true, crmExists: true }, run.at);
      await saveRecord(ctx, failed, stored);
      run.count('FromCrm', 'failed');
      await appendLog(ctx, key, run.log('FromCrm', 'Failed', message));
    }
  });
}

/** Records with an open error that is not skipped: Business Central retries these every run. */
async function addOpenErrors(run: SyncRun, add: (key: string, change: Change) => void): Promise<void> {
  const { ctx } = run;
  let after: string | undefined;
  do {
    const page = await ctx.store.syncErrors.page(undefined, 500, after);
    for (const entry of page.items) {
      const record = (await ctx.store.syncRecords.get(entry.customerKey))?.value;
      const current = record?.error;
      if (!current || current.kind !== entry.kind || current.failedOn !== entry.failedOn) {
        await ctx.store.syncErrors.remove(entry); // left by a crash between writes
      } else if (!record.skipped && !record.awaiting) {
        add(entry.customerKey, { direction: 'ToCrm', recheck: true });
      }
    }
    after = page.next;
  } while (after);
}

/**
 * Synchronizes one HQ customer with its CRM row: the coupled pair by comparing both sides with what they
 * agreed on last time, or an uncoupled customer by matching or inserting a row. A record that changed under
 * us (an operator acted on it meanwhile) is done again from a fresh read.
 */
export function syncCustomer(run: SyncRun, customerKey: string, change: Change): Promise<void> {
  const attributes = { [attr.customerKey]: customerKey, direction: change.direction, ...jobAttribute(run.job) };
  return inSpan('sync customer', { attributes }, async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await syncOnce(run, customerKey, change);
      } catch (error) {
        if (isWriteConflict(error) && attempt < 2) continue;
        if (error instanceof BudgetSpent) throw error;
        await recordFailure(run, customerKey, change, error);
        return;
      }
    }
  });
}

const jobAttribute = (job: string | undefined) => (job ? { [attr.jobName]: job } : {});

/**
 * The CRM with a client span around each write (`crm create`, `crm update`, `crm delete`): the CRM table and row,
 * and the job, inside the record's `sync customer` span (its customer key). Reads have none: a run reads
 * changes and rows in bulk, and a span per read would cost more than it tells.
 */
function tracedWrites(crm: Crm, job: string | undefined): Crm {
  const write = <T>(verb: string, table: CrmTable, id: string, call: () => Promise<T>): Promise<T> => {
    const attributes = { [attr.crmTable]: table, [attr.crmId]: id, ...jobAttribute(job) };
    return inSpan(`crm ${verb}`, { kind: SpanKind.CLIENT, attributes }, call);
  };
  return {
    changes: (table, deltaLink) => crm.changes(table, deltaLink),
    get: (table, id) => crm.get(table, id),
    find: (table, values, top) => crm.find(table, values, top),
    create: (table, id, columns) => write('create', table, id, () => crm.create(table, id, columns)),
    update: (table, id, version, columns) => write('update', table, id, () => crm.update(table, id, version, columns)),
    remove: (table, id, version) => write('delete', table, id, () => crm.remove(table, id, version)),
  };
}

async function syncOnce(run: SyncRun, customerKey: string, change: Change): Promise<void> {
  const { ctx } = run;
  const stored = await ctx.store.syncRecords.get(customerKey);
  const record = stored?.value;
  if (record?.skipped) return run.count(change.direction, 'skipped');
  if (record?.decoupled || record?.awaiting) return;
  // An operator is settling the record's error right now: the next run looks at it again, when the action is done
  // (what changed meanwhile, and the action did not see, is synchronized then).
  if (isSettling(record, ctx.clock())) return ctx.store.crmSyncState.await(customerKey);
  // Decided before HQ is read: a run that follows a large one sees each of its writes come back once.
  if (isCoupled(record) && isEcho(record, change)) return;
  const found = await ctx.store.customers.getRecord(customerKey);
  const hq = found?.value;
  if (!isCoupled(record)) {
    // A row tied to this customer by an insert, a match or an import that a run stopped before recording: it is
    // the customer's row, coupled now and synchronized as any pair (or its deletion, or the customer's, settled),
    // never matched, imported or inserted a second time.
    if (change.linked && hq) {
      const detail = 'Coupled with the row an earlier attempt created, matched or imported:';
      if (!change.crmRow || !isAlive(hq))
        return coupleUnrecorded(run, stored, hq, change.linked, change.crmRow, detail);
      const pair: SyncRecord = {
        ...(stored?.value ?? { customerKey, base: {}, repeats: 0, skipped: false }),
        crmTable: change.linked.table,
        customerAccount: hq.customerAccount,
        asyncCustomerAccount: hq.asyncCustomerAccount,
      };
      await couple(run, pair, stored, change.crmRow, detail);
      return run.count('FromCrm', 'coupled');
    }
    if (!isAlive(hq)) return coupleInsertedRow(run, customerKey, stored, hq);
    const outcome = await matchOrInsert(run, hq, stored, { fields: run.settings.matchFields, insert: true });
    // With insert, no match means a customer waiting for its CRM row's import (see matchOrInsert).
    run.count('ToCrm', outcome === 'multipleMatches' || outcome === 'noMatch' ? 'failed' : outcome);
    return;
  }
  // A change about another row tied to this customer (a stale link) says nothing about the pair: read it afresh.
  const about =
    change.linked && change.linked.id !== record.crmId
      ? { ...change, crmRow: undefined, crmDeleted: undefined, recheck: true }
      : change;
  await syncPair(run, { value: record, etag: stored!.etag }, hq, about, found?.etag);
}

/**
 * A customer deleted in HQ before a run recorded its insert: if the insert did create the row (the run stopped
 * in between), the row is coupled now, so that the deletion is reported (or follows the deletion policy) like
 * any other, never left in the CRM unseen. The reverse index names the customer from before the insert.
 */
async function coupleInsertedRow(
  run: SyncRun,
  customerKey: string,
  stored: Versioned<SyncRecord> | undefined,
  hq: CustomerRecord | undefined,
): Promise<void> {
  const { ctx } = run;
  if (!hq?.deletedCustomer) return;
  const table = tableFor(hq.deletedCustomer.customerType);
  const id = rowIdFor(customerKey);
  if ((await ctx.store.syncRecords.customerKeyOfRow(table, id)) !== customerKey) return;
  const row = await run.crm.get(table, id);
  if (row)
    await coupleUnrecorded(run, stored, hq, { table, id }, row, 'Coupled with the row an earlier attempt created:');
}

/**
 * Records the coupling of a customer with a row that a run stopped before recording, and settles the deletion
 * of one side (the customer in HQ, or the row in the CRM when `row` is undefined) as for any coupled pair; if
 * HQ has not applied the customer's create yet, the pair is settled when it has (the feed brings it).
 */
async function coupleUnrecorded(
  run: SyncRun,
  stored: Versioned<SyncRecord> | undefined,
  hq: CustomerRecord,
  target: { table: CrmTable; id: string },
  row: CrmRow | undefined,
  detail: string,
): Promise<void> {
  const { ctx } = run;
  const record: SyncRecord = {
    ...(stored?.value ?? { customerKey: hq.customerKey, base: {}, repeats: 0, skipped: false }),
    customerAccount: hq.customerAccount,
    asyncCustomerAccount: hq.asyncCustomerAccount,
    crmTable: target.table,
    crmId: target.id,
    coupledAt: run.at,
    ...(row ? { crmVersion: row.version } : {}),
  };
  const etag = await saveRecord(ctx, record, stored);
  const direction = row ? 'ToCrm' : 'FromCrm';
  await appendLog(
    ctx,
    hq.customerKey,
    run.log(direction, 'Coupled', `${detail} CRM ${target.table} row ${target.id}.`),
  );
  if (hq.customer || hq.deleted) await settleDeletion(run, { value: record, etag }, hq, row, direction);
}

export type Coupled = SyncRecord & { crmId: string };

/** Our own write coming back through change tracking: nothing to do (no echo). */
const isEcho = (record: Coupled, change: Change) =>
  change.crmRow !== undefined &&
  change.crmRow.version === record.crmVersion &&
  !change.recheck &&
  change.direction === 'FromCrm';

export async function syncPair(
  run: SyncRun,
  stored: Versioned<SyncRecord>,
  hq: CustomerRecord | undefined,
  change: Change,
  /** The customer record's ETag as read: a CRM change is submitted to HQ only if HQ is still as decided on. */
  hqEtag?: string,
): Promise<void> {
  const { ctx, settings } = run;
  const record = stored.value as Coupled;
  const mapping = MAPPINGS[record.crmTable];
  // Coupled before HQ applied the customer's create (an interrupted import): synchronized once it has.
  if (hq && !hq.customer && !hq.deleted) return;
  if (isEcho(record, change)) return;
  let row = change.crmRow;
  let crmGone = change.crmDeleted === true;
  const baseKnown = mapping.fields.every((f) => f.field in record.base);
  if (!row && !crmGone && (change.recheck || !baseKnown || !isAlive(hq) || !record.crmVersion)) {
    row = await run.crm.get(record.crmTable, record.crmId);
    crmGone = !row;
  }

  if (!isAlive(hq) || crmGone) {
    await settleDeletion(run, stored, hq, row, change.direction);
    return;
  }

  // Not read: the row is as it was at the last synchronization (a write below is conditional on that).
  const crmValues = row ? crmSnapshot(mapping, row.columns) : record.base;
  const decision = await decidePair(run, record, hq, crmValues, settings.conflictPolicy);
  if (decision.kind === 'conflict') {
    const message = `Modified in both apps: ${decision.differences.map((d) => d.field).join(', ')} differ.`;
    const next = withError(
      record,
      { kind: 'ModifiedInBoth', message, hqExists: true, crmExists: true, differences: decision.differences },
      run.at,
    );
    await saveRecord(ctx, next, stored);
    run.count('ToCrm', 'failed');
    await appendLog(ctx, record.customerKey, run.log('ToCrm', 'Conflict', message));
    return;
  }
  try {
    await applyDecision(run, stored, hq, row, decision, change.direction, hqEtag);
  } catch (error) {
    // The row changed since it was read (or since the last run): synchronize again knowing its new values. (HQ
    // changed since it was read: the conflict goes up, and the customer is synchronized again from fresh reads.)
    if (isWriteConflict(error) && !change.recheck) {
      return syncPair(run, stored, hq, { ...change, crmRow: undefined, recheck: true }, hqEtag);
    }
    throw error;
  }
}

/**
 * What synchronizing the pair calls for (see `decide`). A change from the CRM is applied after the operations
 * HQ has accepted but not applied yet, so it is decided against HQ as those will leave it too: it never silently
 * overwrites a newer HQ edit still on its way.
 */
export async function decidePair(
  run: SyncRun,
  record: Coupled,
  hq: CustomerRecord & { customer: Customer },
  crmValues: Snapshot,
  policy: ConflictPolicy,
): Promise<Decision> {
  const mapping = MAPPINGS[record.crmTable];
  const hqValues = hqSnapshot(mapping, { customerAccount: hq.customerAccount, customer: hq.customer });
  const decision = decide(mapping, record.base, hqValues, crmValues, policy);
  if (decision.kind === 'write' && decision.toHq.length > 0) {
    const ahead = await hqAhead(run.ctx, hq);
    if (ahead) {
      const aheadValues = hqSnapshot(mapping, { customerAccount: hq.customerAccount, customer: ahead });
      const later = decide(mapping, record.base, aheadValues, crmValues, policy);
      if (later.kind === 'conflict') return later;
    }
  }
  return decision;
}

/**
 * Writes what a decision calls for: to the CRM row (conditional on the version read, so a row changed meanwhile
 * is a WriteConflict and nothing is overwritten) and to HQ as an operation from the channel `crm`; then the
 * record, with the values both sides now agree on. The HQ operation, if any, is returned.
 */
export async function applyDecision(
  run: SyncRun,
  stored: Versioned<SyncRecord>,
  hq: CustomerRecord & { customer: Customer },
  row: CrmRow | undefined,
  decision: Extract<Decision, { kind: 'write' }>,
  direction: SyncLogDirection,
  /** The HQ customer record's ETag as read: an HQ operation is then submitted only if it is still current. */
  hqEtag?: string,
): Promise<string | undefined> {
  const { ctx } = run;
  const record = stored.value as Coupled;
  const mapping = MAPPINGS[record.crmTable];
  const logs = [];
  let version = row?.version ?? record.crmVersion!;
  if (decision.toCrm.length > 0) {
    const values = Object.fromEntries(decision.toCrm.map((c) => [c.name, c.newValue]));
    version = (await run.crm.update(record.crmTable, record.crmId, version, toColumns(mapping, values))).version;
    const detail = decision.resolved
      ? `Written to the CRM (${resolvedBy(run, decision.resolved)}).`
      : 'Written to the CRM.';
    logs.push(run.log('ToCrm', 'Modified', detail, decision.toCrm));
    run.count('ToCrm', 'modified');
  }
  let awaiting: string | undefined;
  if (decision.toHq.length > 0) {
    const changes = Object.fromEntries(decision.toHq.map((c) => [c.name, c.newValue]));
    awaiting = await submitFromCrm(run, hq, record.crmId, version, changes, hqEtag);
    const detail = `Submitted to HQ as operation ${awaiting}${decision.resolved ? ` (${resolvedBy(run, decision.resolved)})` : ''}.`;
    logs.push(run.log('FromCrm', 'Modified', detail, decision.toHq));
    run.count('FromCrm', 'modified');
  }
  if (logs.length === 0) run.count(direction, 'unchanged');
  const next: SyncRecord = {
    ...run.succeeded(record, awaiting),
    base: decision.base,
    crmVersion: version,
    hqVersion: hq.version,
    customerAccount: hq.customerAccount,
    ...(awaiting ? { awaiting } : {}),
  };
  if (awaiting) await ctx.store.crmSyncState.await(record.customerKey);
  await saveRecord(ctx, next, stored);
  await appendLog(ctx, record.customerKey, ...logs);
  return awaiting;
}

/** Who picked the winning version: an operator's Synchronize, or the conflict policy. */
const resolvedBy = (run: SyncRun, policy: ConflictPolicy) =>
  run.action ? `Synchronize, using the ${policy === 'SendToCrm' ? 'HQ' : 'CRM'} version` : `conflict policy ${policy}`;

/**
 * The HQ customer as it will be once the edits HQ has accepted but not applied yet are applied, if there are any.
 * Earlier operations from the CRM are left out: a new change from the CRM comes after them and supersedes them.
 */
export async function hqAhead(
  ctx: SyncContext,
  hq: CustomerRecord & { customer: Customer },
): Promise<Customer | undefined> {
  const seqs: number[] = [];
  for (let seq = hq.appliedThrough + 1; seq < hq.nextSeq && seqs.length < 100; seq++) seqs.push(seq);
  const ops = await Promise.all(seqs.map((seq) => ctx.store.customers.getOperationHead(hq.customerKey, seq)));
  let ahead: Customer | undefined;
  for (const op of ops) {
    if (op?.type !== 'Update' || op.status === 'Failed' || op.channel === CRM_CHANNEL) continue;
    ahead = applyChanges(ahead ?? hq.customer, op.changes) as Customer;
  }
  return ahead;
}

/**
 * An edit of HQ carrying CRM values, from the channel `crm`. Its Idempotency-Key is the row and version it
 * came from, so the same CRM change submitted again (a run repeated after a crash) is accepted once.
 */
async function submitFromCrm(
  run: SyncRun,
  hq: CustomerRecord,
  crmId: string,
  version: string,
  changes: Snapshot,
  ifMatch?: string,
): Promise<string> {
  const accepted = await submitEdit(run.ctx, {
    channel: CRM_CHANNEL,
    account: hq.customerKey,
    ...(ifMatch ? { ifMatch } : {}),
    patch: unflatten(changes) as Parameters<typeof submitEdit>[1]['patch'],
    by: run.actor,
    idempotency: { key: `${crmId}@${version}`, requestHash: hash(changes) },
  });
  return accepted.operationId;
}

/**
 * One side deleted (DESIGN.md §8): an error, unless the deletion policy (or an operator's Restore or Delete,
 * passed as `policy`) decides. The HQ operation it submits, if any, is returned.
 */
export async function settleDeletion(
  run: SyncRun,
  stored: Versioned<SyncRecord>,
  hq: CustomerRecord | undefined,
  row: CrmRow | undefined,
  changed: SyncLogDirection,
  policy: DeletionPolicy = run.settings.deletionPolicy,
): Promise<string | undefined> {
  const { ctx, settings } = run;
  const record = stored.value as Coupled;
  const hqExists = isAlive(hq);
  const crmExists = row !== undefined;
  const direction: SyncLogDirection = hqExists ? 'FromCrm' : 'ToCrm';
  // An operator's action says so; a policy is named as the reason.
  const why = (action: string) => (run.action ? `${action} by ${run.actor}` : `deletion policy ${policy}`);
  if (!hqExists && !crmExists) {
    await saveRecord(ctx, { ...run.succeeded(record), decoupled: true }, stored);
    run.count(direction, 'deleted');
    await appendLog(
      ctx,
      record.customerKey,
      run.log(direction, 'Uncoupled', 'Deleted in both apps; coupling removed.'),
    );
    return;
  }
  const where = hqExists ? 'the CRM' : 'HQ';
  if (policy === 'RemoveCoupling') {
    await saveRecord(ctx, { ...run.succeeded(record), decoupled: true }, stored);
    run.count(direction, 'deleted');
    const detail = `Deleted in ${where}; coupling removed (deletion policy RemoveCoupling).`;
    await appendLog(ctx, record.customerKey, run.log(direction, 'Uncoupled', detail));
    return;
  }
  if (policy === 'Restore' && hqExists) {
    // Recreated under the customer's deterministic id (found, not duplicated, if a crash repeats this), which
    // the reverse index names before the row exists.
    const mapping = MAPPINGS[record.crmTable];
    const values = hqSnapshot(mapping, { customerAccount: hq.customerAccount, customer: hq.customer });
    const id = rowIdFor(record.customerKey);
    await ctx.store.syncRecords.linkRow(record.crmTable, id, record.customerKey);
    const { row: created } = await createRow(run, record.crmTable, id, toColumns(mapping, values));
    const next = {
      ...run.succeeded(record),
      crmId: id,
      base: values,
      crmVersion: created.version,
      hqVersion: hq.version,
    };
    await saveRecord(ctx, next, stored);
    run.count('ToCrm', 'inserted');
    const detail = `Deleted in the CRM; restored from HQ as CRM ${record.crmTable} row ${id} (${why('Restore')}).`;
    await appendLog(ctx, record.customerKey, run.log('ToCrm', 'Inserted', detail));
    return;
  }
  if (policy === 'Delete' && !hqExists && row) {
    await run.crm.remove(record.crmTable, record.crmId, row.version);
    await saveRecord(ctx, { ...run.succeeded(record), decoupled: true }, stored);
    run.count('ToCrm', 'deleted');
    const detail = `Deleted in HQ; deleted in the CRM (${why('Delete')}).`;
    await appendLog(ctx, record.customerKey, run.log('ToCrm', 'Deleted', detail));
    return;
  }
  if (policy === 'Restore' && !hqExists && row) {
    const mapping = MAPPINGS[record.crmTable];
    const values = crmSnapshot(mapping, row.columns);
    // The customer as HQ last had it, with the CRM's values of the synchronized fields.
    const restored = applyChanges(hq?.deletedCustomer, {
      ...customerFromRow(mapping, row.columns, settings.defaults),
      ...(hq?.deletedCustomer ? toHqChanges(mapping, values) : {}),
    }) as Customer;
    const accepted = await submitRestore(ctx, {
      account: record.customerKey,
      customer: restored,
      channel: CRM_CHANNEL,
      by: run.actor,
      idempotency: { key: `${record.crmId}@${row.version}:restore`, requestHash: hash(restored) },
    });
    await ctx.store.crmSyncState.await(record.customerKey);
    const next = {
      ...run.succeeded(record, accepted.operationId),
      base: values,
      crmVersion: row.version,
      awaiting: accepted.operationId,
    };
    await saveRecord(ctx, next, stored);
    run.count('FromCrm', 'inserted');
    const detail = `Deleted in HQ; restored from the CRM as operation ${accepted.operationId} (${why('Restore')}).`;
    await appendLog(ctx, record.customerKey, run.log('FromCrm', 'Inserted', detail));
    return accepted.operationId;
  }
  if (policy === 'Delete' && hqExists) {
    const accepted = await submitDelete(ctx, {
      account: record.customerKey,
      channel: CRM_CHANNEL,
      by: run.actor,
      idempotency: { key: `${record.crmId}@${record.crmVersion}:deleted`, requestHash: hash(record.crmId) },
    });
    await saveRecord(ctx, { ...run.succeeded(record, accepted.operationId), decoupled: true }, stored);
    run.count('FromCrm', 'deleted');
    const detail = `Deleted in the CRM; deleted in HQ as operation ${accepted.operationId} (${why('Delete')}).`;
    await appendLog(ctx, record.customerKey, run.log('FromCrm', 'Deleted', detail));
    return accepted.operationId;
  }
  const kind = hqExists ? 'DeletedInCrm' : 'DeletedInHq';
  const message = `The ${hqExists ? 'CRM row' : 'HQ customer'} was deleted; the ${hqExists ? 'HQ customer' : 'CRM row'} still exists.`;
  // The surviving side's version: Restore or Delete acts only on it as it is now.
  const seen = hqExists ? { hqVersion: hq.version } : { crmVersion: row!.version };
  await saveRecord(ctx, withError(record, { kind, message, hqExists, crmExists, seen }, run.at), stored);
  run.count(changed === 'ToCrm' && !hqExists ? 'ToCrm' : direction, 'failed');
  await appendLog(ctx, record.customerKey, run.log(direction, 'Failed', message));
}

/**
 * Creates a row with a known id. If a row has it, that is our own earlier attempt (its answer lost, or the
 * process died before recording it), possibly edited in the CRM since: it is returned as found.
 */
async function createRow(
  run: SyncRun,
  table: CrmTable,
  id: string,
  columns: Record<string, unknown>,
): Promise<{ row: CrmRow; created: boolean }> {
  try {
    return { row: await run.crm.create(table, id, columns), created: true };
  } catch (error) {
    if (!isWriteConflict(error)) throw error;
    const existing = await run.crm.get(table, id);
    if (!existing) throw error;
    return { row: existing, created: false };
  }
}

export type MatchOutcome = 'coupled' | 'multipleMatches' | 'inserted' | 'noMatch';

/**
 * An HQ customer not coupled yet: matched on the match fields first (DESIGN.md §8): one match couples, several
 * is a MultipleMatches error, none inserts a row with the customer's deterministic id (if `insert`).
 */
export async function matchOrInsert(
  run: SyncRun,
  hq: CustomerRecord & { customer: Customer },
  stored: Versioned<SyncRecord> | undefined,
  options: { fields: string[]; insert: boolean },
): Promise<MatchOutcome> {
  const { ctx } = run;
  const table = tableFor(hq.customer.customerType);
  const mapping = MAPPINGS[table];
  const values = hqSnapshot(mapping, { customerAccount: hq.customerAccount, customer: hq.customer });
  const record: SyncRecord = {
    ...(stored?.value ?? { customerKey: hq.customerKey, base: {}, repeats: 0, skipped: false }),
    crmTable: table,
    customerAccount: hq.customerAccount,
    asyncCustomerAccount: hq.asyncCustomerAccount,
  };
  const id = rowIdFor(hq.customerKey);
  const matches = (await findMatches(run, table, values, options.fields)).filter((r) => r.id !== id);
  if (matches.length > 1) {
    const ids = matches.map((m) => m.id).join(', ');
    const message = `Matches ${matches.length} CRM ${table} rows on ${options.fields.join(', ')}: ${ids}.`;
    const error = { kind: 'MultipleMatches' as const, message, hqExists: true, crmExists: true, crmId: matches[0]!.id };
    await saveRecord(ctx, withError(record, error, run.at), stored);
    await appendLog(ctx, hq.customerKey, run.log('ToCrm', 'Failed', message));
    return 'multipleMatches';
  }
  if (matches.length === 1) {
    await couple(run, record, stored, matches[0]!, `Coupled by matching on ${options.fields.join(', ')}:`);
    return 'coupled';
  }
  if (!options.insert) return 'noMatch';
  // A customer HQ created from a CRM row, whose import a run stopped before recording: that row is its row (it is
  // coupled when the import reads it again), not one to insert a second time.
  if ((await ctx.store.customers.getOperationHead(hq.customerKey, 1))?.channel === CRM_CHANNEL) {
    const message =
      'Created in HQ from a CRM row whose coupling was not recorded: it is coupled with that row when the row is ' +
      'read again, unless the row was deleted in the CRM.';
    const error = { kind: 'Failed' as const, message, hqExists: true, crmExists: false };
    await saveRecord(ctx, withError(record, error, run.at), stored);
    await appendLog(ctx, hq.customerKey, run.log('ToCrm', 'Failed', message));
    return 'noMatch';
  }
  await ctx.store.syncRecords.linkRow(table, id, hq.customerKey);
  const { row, created } = await createRow(run, table, id, toColumns(mapping, values));
  if (!created) {
    await couple(run, record, stored, row, 'Coupled with the row an earlier attempt created:');
    return 'coupled';
  }
  const next: SyncRecord = {
    ...run.succeeded(record),
    crmId: row.id,
    coupledAt: run.at,
    base: { ...values, ...crmSnapshot(mapping, row.columns) },
    crmVersion: row.version,
    hqVersion: hq.version,
  };
  await saveRecord(ctx, next, stored);
  const fields = mapping.fields
    .filter((f) => f.direction !== 'FromCrm' && values[f.field] !== null)
    .map((f) => ({ name: f.field, oldValue: null, newValue: values[f.field]! }));
  await appendLog(
    ctx,
    hq.customerKey,
    run.log('ToCrm', 'Inserted', `Inserted into CRM ${table} as ${row.id}.`, fields),
  );
  return 'inserted';
}

/**
 * Couples a record with a row and synchronizes the pair at once. Only the values both already agree on count
 * as synchronized, so any other difference is a conflict for an operator (or the conflict policy) to settle,
 * never one side silently overwriting the other.
 */
export async function couple(
  run: SyncRun,
  record: SyncRecord,
  stored: Versioned<SyncRecord> | undefined,
  row: CrmRow,
  detail: string,
): Promise<void> {
  const { ctx } = run;
  const mapping = MAPPINGS[record.crmTable];
  const found = await ctx.store.customers.getRecord(record.customerKey);
  const hq = found?.value;
  if (!isAlive(hq)) return;
  await ctx.store.syncRecords.linkRow(record.crmTable, row.id, record.customerKey);
  const hqValues = hqSnapshot(mapping, { customerAccount: hq.customerAccount, customer: hq.customer });
  const coupled: SyncRecord = {
    ...run.succeeded(record),
    crmId: row.id,
    coupledAt: run.at,
    base: agreed(hqValues, crmSnapshot(mapping, row.columns)),
    crmVersion: row.version,
  };
  delete coupled.decoupled;
  const etag = await saveRecord(ctx, coupled, stored);
  await appendLog(
    ctx,
    record.customerKey,
    run.log('ToCrm', 'Coupled', `${detail} CRM ${record.crmTable} row ${row.id}.`),
  );
  await syncPair(run, { value: coupled, etag }, hq, { direction: 'ToCrm', crmRow: row, recheck: true }, found?.etag);
}

/**
 * Rows that match on the match fields in priority order (the first field, narrowed by the next while several
 * match), leaving out rows coupled with another customer.
 */
export async function findMatches(
  run: SyncRun,
  table: CrmTable,
  values: Snapshot,
  fields: string[],
): Promise<CrmRow[]> {
  const mapping = MAPPINGS[table];
  const criteria: Record<string, string> = {};
  let rows: CrmRow[] = [];
  for (const field of fields) {
    const column = mapping.fields.find((f) => f.field === field)?.column;
    const value = values[field];
    if (!column || value === null || value === undefined) continue;
    criteria[column] = String(value);
    rows = await free(run, table, await run.crm.find(table, criteria, 10));
    if (rows.length <= 1) break;
  }
  return rows;
}

async function free(run: SyncRun, table: CrmTable, rows: CrmRow[]): Promise<CrmRow[]> {
  const out: CrmRow[] = [];
  for (const row of rows) {
    const key = await run.ctx.store.syncRecords.customerKeyOfRow(table, row.id);
    const owner = key ? (await run.ctx.store.syncRecords.get(key))?.value : undefined;
    if (!isCoupled(owner) || owner.crmId !== row.id) out.push(row);
  }
  return out;
}

/**
 * A row created in the CRM (not coupled): a row the sync created for an HQ customer (it carries the customer
 * account) or one whose email belongs to an uncoupled HQ customer is coupled with that customer; any other
 * becomes an HQ create from the channel `crm`, whose Idempotency-Key is the row id, so it is created once.
 */
async function importRow(run: SyncRun, table: CrmTable, row: CrmRow): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await importOnce(run, table, row);
    } catch (error) {
      if (isWriteConflict(error) && attempt < 2) continue; // another row was coupled with the customer meanwhile
      if (error instanceof BudgetSpent) throw error;
      // Nothing to hang an error on yet: the delta link stays where it was, so the row comes again next run.
      run.count('FromCrm', 'failed');
      run.incomplete = true;
      run.ctx.log(
        `Importing CRM ${table} row ${row.id} failed: ${error instanceof Error ? error.message : String(error)}`,
      );
      return;
    }
  }
}

async function importOnce(run: SyncRun, table: CrmTable, row: CrmRow): Promise<void> {
  const { ctx } = run;
  const owner = await ctx.store.syncRecords.customerKeyOfRow(table, row.id);
  if (owner) return; // an insert from HQ in progress, or a coupling removed: not imported
  const mapping = MAPPINGS[table];
  const values = crmSnapshot(mapping, row.columns);
  const candidate = await hqCandidate(run, values);
  if (candidate) {
    const stored = await ctx.store.syncRecords.get(candidate.customerKey);
    // The customer already matches several rows: that error names this one too, for an operator to settle.
    if (stored?.value.error?.kind === 'MultipleMatches') return;
    if (!stored || (!isCoupled(stored.value) && !stored.value.decoupled)) {
      const record: SyncRecord = stored?.value ?? {
        customerKey: candidate.customerKey,
        customerAccount: candidate.customerAccount,
        asyncCustomerAccount: candidate.asyncCustomerAccount,
        crmTable: table,
        base: {},
        repeats: 0,
        skipped: false,
      };
      const by = values[CUSTOMER_ACCOUNT] ? 'customer account' : 'email';
      await couple(run, { ...record, crmTable: table }, stored, row, `Coupled with the HQ customer of the same ${by}:`);
      run.count('FromCrm', 'coupled');
      return;
    }
  }
  const customer = customerFromRow(mapping, row.columns, run.settings.defaults);
  const accepted = await submitCreate(ctx, {
    channel: CRM_CHANNEL,
    customer: unflatten(customer) as Customer,
    by: run.actor,
    idempotency: { key: row.id, requestHash: hash(row.id) },
  });
  const customerKey = accepted.asyncCustomerAccount!;
  await ctx.store.syncRecords.linkRow(table, row.id, customerKey);
  await ctx.store.crmSyncState.await(customerKey);
  const stored = await ctx.store.syncRecords.get(customerKey);
  if (stored?.value.crmId === row.id) return; // done by an earlier attempt
  // What HQ gets is the create accepted first for this row: an earlier attempt's, made from the row as it was
  // then, if the run stopped after submitting it. The row's changes since are then changes to synchronize.
  const create = await ctx.store.customers.getOperationHead(customerKey, 1);
  const created = create ? hqSnapshot(mapping, { customer: unflatten(create.changes) as Customer }) : values;
  const record: SyncRecord = {
    customerKey,
    asyncCustomerAccount: customerKey,
    crmTable: table,
    crmId: row.id,
    coupledAt: run.at,
    base: { ...created, [CUSTOMER_ACCOUNT]: values[CUSTOMER_ACCOUNT] ?? null },
    crmVersion: row.version,
    awaiting: accepted.operationId,
    repeats: 0,
    skipped: false,
  };
  await saveRecord(ctx, run.succeeded(record), stored);
  run.count('FromCrm', 'inserted');
  const fields = Object.entries(customer).map(([name, newValue]) => ({ name, oldValue: null, newValue }));

  const detail = `Created in HQ from CRM ${table} row ${row.id} as operation ${accepted.operationId}.`;
  await appendLog(ctx, customerKey, run.log('FromCrm', 'Inserted', detail, fields));
}

/** The HQ customer a new CRM row stands for: by the customer account it carries, else by its email. */
async function hqCandidate(run: SyncRun, values: Snapshot): Promise<CustomerRecord | undefined> {
  const { store } = run.ctx;
  const account = values[CUSTOMER_ACCOUNT];
  if (typeof account === 'string') {
    const key = await store.accounts.customerKeyOf(account);
    const record = key && (await store.customers.getRecord(key))?.value;
    if (record && record.customerAccount === account && isAlive(record)) return record;
  }
  if (typeof values.email === 'string') {
    const claim = await store.emailClaims.get(normalizeEmail(values.email));
    const record = claim && (await store.customers.getRecord(claim.customerKey))?.value;
    if (record && isAlive(record) && normalizeEmail(record.customer.email) === normalizeEmail(values.email))
      return record;
  }
  return undefined;
}

/**
 * A failure that is not a finding about the record (the CRM refused a value, or kept failing): a `Failed` sync
 * error, so the record is tried again next run and an operator sees why. Only a refusal can repeat into
 * `skipped`; an outage does not. If the error cannot be recorded, the run fails.
 */
async function recordFailure(run: SyncRun, customerKey: string, change: Change, error: unknown): Promise<void> {
  const { ctx } = run;
  const message = error instanceof Error ? error.message : String(error);
  ctx.log(`Synchronizing a customer failed: ${message}`, { customerKey, jobName: run.job });
  run.count(change.direction, 'failed');
  const stored = await ctx.store.syncRecords.get(customerKey);
  const hq = (await ctx.store.customers.getRecord(customerKey))?.value;
  let record: SyncRecord = stored?.value ?? {
    customerKey,
    customerAccount: hq?.customerAccount,
    asyncCustomerAccount: hq?.asyncCustomerAccount,
    crmTable: tableFor(hq?.customer?.customerType ?? 'Person'),
    base: {},
    repeats: 0,
    skipped: false,
  };
  // A row the change tied to an uncoupled customer stays tied to it: the delta has moved on, so the retry must
  // know it is the customer's row (changed or deleted), not look for one to match or insert.
  if (change.linked && !isCoupled(record) && !record.decoupled && (hq?.customer || hq?.deleted)) {
    record = { ...record, crmTable: change.linked.table, crmId: change.linked.id, coupledAt: run.at };
  }
  const failed = withError(
    record,
    { kind: 'Failed', message, hqExists: isAlive(hq), crmExists: Boolean(record.crmId) },
    run.at,
    !(error instanceof CrmRefused),
  );
  // Not recorded, the failure would be forgotten: the cursors move past the change and no error brings the record
  // back. So a failure to record it fails the run, whose cursors stay where they were.
  await saveRecord(ctx, failed, stored);
  await appendLog(ctx, customerKey, run.log(change.direction, 'Failed', message)).catch(() => undefined);
}
