import type { Changes } from '../domain/changes';
import { DomainError } from '../domain/errors';
import { edited, isFinal, resynced } from '../domain/lifecycle';
import { type Operation, type OperationSummary, summaryOf } from '../domain/operation';
import { entryIsFor, type IndexEntry } from '../domain/ports';
import { isWriteConflict, type Versioned } from '../domain/versioned';
import type { SyncContext } from './context';
import type { OperationFilter } from './filter';
import { allOperations } from './list';
import { getOperation } from './queries';
import { ring } from './submit';

/**
 * An operator edits the new values of a Failed operation (see `edited` in the lifecycle), guarded by the ETag
 * the operator read (If-Match).
 */
export async function editFailedOperation(
  ctx: SyncContext,
  operationId: string,
  ifMatch: string,
  edits: Changes,
  by: string,
): Promise<Versioned<Operation>> {
  const { value: current, etag } = await getOperation(ctx, operationId);
  if (etag !== ifMatch) throw etagMismatch();
  const op = edited(current, edits, by, ctx.clock().toISOString());
  // The failed index carries the values for field filters too. Written first: if the update then fails, it
  // only offers a candidate that the list checks against the operation. The hour entry, which listings show as
  // it is, follows the operation.
  await ctx.store.operationIndex.putFailed(op);
  let newEtag: string;
  try {
    newEtag = await ctx.store.customers.updateOperation({ value: op, etag });
  } catch (error) {
    if (isWriteConflict(error)) throw etagMismatch();
    throw error;
  }
  await ctx.store.operationIndex.put(op);
  return { value: op, etag: newEtag };
}

/** Resyncs one operation (Failed → Pending); the reason it was skipped otherwise. */
export async function resyncOperation(ctx: SyncContext, operationId: string, by: string): Promise<string | undefined> {
  for (let attempt = 0; attempt < 5; attempt++) {
    let found: Versioned<Operation>;
    try {
      found = await getOperation(ctx, operationId);
    } catch (error) {
      if (error instanceof DomainError && error.code === 'OPERATION_NOT_FOUND') return 'NOT_FOUND';
      throw error;
    }
    if (found.value.status !== 'Failed') return `NOT_FAILED (${found.value.status})`;
    if (isFinal(found.value)) return `FINAL (${found.value.lastError!.code})`;
    const now = ctx.clock();
    const op = resynced(found.value, by, now.toISOString());
    // Listed as pending before the status changes, so the job rings it even if the doorbell below is lost.
    const pending = await ctx.store.pending.mark(op.customerKey, now);
    try {
      await ctx.store.customers.updateOperation({ value: op, etag: found.etag });
    } catch (error) {
      if (isWriteConflict(error)) continue; // changed meanwhile (another operator, the processor): look again
      throw error;
    }
    // Its failed entry goes only now that it is not Failed: a crash before leaves an extra entry (the processor
    // removes it once the operation applies), never a failure that is not listed.
    await ctx.store.operationIndex.update(op, found.value.lastError);
    await ring(ctx, { customerKey: op.customerKey, pending });
    return undefined;
  }
  return 'CONFLICT (the operation kept changing; try again)';
}

export interface BulkResult {
  accepted: number;
  skipped: { operationId: string; reason: string }[];
}

/** The most operations one bulk call resyncs; a larger selection is refused, to be narrowed or repeated. */
export const BULK_LIMIT = 5000;

export async function resyncMany(
  ctx: SyncContext,
  selection: { operationIds: string[] } | { filter: OperationFilter },
  by: string,
): Promise<BulkResult> {
  const ids: string[] = [];
  if ('operationIds' in selection) ids.push(...new Set(selection.operationIds));
  else if (selection.filter.status === undefined || selection.filter.status === 'Failed') {
    // Only Failed operations can be resynced (a filter for another status selects none), so the failed index
    // drives the selection.
    for await (const op of allOperations(ctx, { ...selection.filter, status: 'Failed' })) {
      ids.push(op.operationId);
      if (ids.length > BULK_LIMIT) {
        throw new DomainError(
          'VALIDATION_FAILED',
          `The filter selects more than ${BULK_LIMIT} operations; narrow it.`,
          {
            filter: [`selects more than ${BULK_LIMIT} operations`],
          },
        );
      }
    }
  }
  const result: BulkResult = { accepted: 0, skipped: [] };
  // In submission order per customer is the processor's job; here, a few at a time is enough.
  for (let i = 0; i < ids.length; i += 16) {
    const reasons = await Promise.all(ids.slice(i, i + 16).map((id) => resyncOperation(ctx, id, by)));
    reasons.forEach((reason, j) => {
      if (reason) result.skipped.push({ operationId: ids[i + j]!, reason });
      else result.accepted++;
    });
  }
  return result;
}

/**
 * Failed operations grouped by error code: count, channels affected and the newest example. Each index entry
 * is checked against its operation, so an entry left behind by a crash is neither counted nor shown (and is
 * removed on the way).
 */
export async function listFailures(ctx: SyncContext) {
  const groups = new Map<string, { code: string; count: number; channels: Set<string>; example?: OperationSummary }>();
  let batch: IndexEntry[] = [];
  const flush = async () => {
    const ops = await Promise.all(batch.map((e) => ctx.store.customers.getOperationHead(e.customerKey, e.seq)));
    for (const [i, entry] of batch.entries()) {
      const op = ops[i];
      if (!op || !entryIsFor(entry, op) || op.status !== 'Failed') {
        if (!op || op.status !== 'Failed') await ctx.store.operationIndex.removeFailed(entry.item, entry.failedAt);
        continue;
      }
      const code = op.lastError?.code ?? 'UNKNOWN';
      const group = groups.get(code) ?? { code, count: 0, channels: new Set<string>() };
      group.count++;
      group.channels.add(op.channel);
      group.example ??= summaryOf(op); // entries come newest first
      groups.set(code, group);
    }
    batch = [];
  };
  for await (const entry of ctx.store.operationIndex.failedEntries()) {
    batch.push(entry);
    if (batch.length === 64) await flush();
  }
  await flush();
  return [...groups.values()]
    .map((g) => ({ code: g.code, count: g.count, channels: [...g.channels].sort(), example: g.example! }))
    .sort((a, b) => b.count - a.count);
}

const etagMismatch = () =>
  new DomainError('ETAG_MISMATCH', 'The operation changed since you read it; read it again and reapply your edit.');
