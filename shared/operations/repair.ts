import { applyChanges, attributeGrid, type AttributeValue, type Changes, unflatten } from '../domain/changes';
import { customerPatchSchema, customerSchema } from '../domain/customer';
import { DomainError } from '../domain/errors';
import type { Operation, OperationSummary } from '../domain/operation';
import { fieldErrors } from '../http/request';
import type { Versioned } from '../storage/customer-store';
import { entryIsFor, type IndexEntry } from '../storage/operation-index';
import { hasStatus } from '../storage/tables';
import type { SyncContext } from './context';
import type { OperationFilter } from './filter';
import { allOperations } from './list';
import { getOperation } from './queries';
import { ring } from './submit';

/**
 * An operator edits the new values of a Failed operation. Guarded by the ETag the operator read (If-Match),
 * validated like a submit, and recorded in the history with who, when and old → new per attribute. The values
 * the channel submitted are kept as `submitted` on the first edit, so nothing the channel sent is lost.
 */
export async function editFailedOperation(
  ctx: SyncContext,
  operationId: string,
  ifMatch: string | null,
  edits: Changes,
  by: string,
): Promise<Versioned<Operation>> {
  if (!ifMatch) {
    throw new DomainError('PRECONDITION_REQUIRED', 'Send If-Match with the ETag from GET /api/operations/{id}.');
  }
  const { value: current, etag } = await getOperation(ctx, operationId);
  if (etag !== ifMatch) throw etagMismatch();
  if (current.status !== 'Failed') {
    throw new DomainError('INVALID_STATE', `Only a Failed operation can be edited; this one is ${current.status}.`);
  }
  const changes = validChanges(current.type, { ...current.changes, ...edits });

  const at = ctx.clock().toISOString();
  const op = structuredClone(current);
  op.submitted ??= current.changes;
  op.changes = changes;
  const before = new Map(current.attributes.map((a) => [a.name, a.oldValue] as const));
  op.attributes = attributeGrid(undefined, changes).map((a) => ({ ...a, oldValue: before.get(a.name) ?? null }));
  const edited = Object.keys(edits).map((name) => ({
    name,
    oldValue: current.changes[name] ?? null,
    newValue: changes[name] ?? null,
  }));
  const described = edited.map((e) => `${e.name}: ${show(e.oldValue)} → ${show(e.newValue)}`);
  op.history.push({ at, status: 'Failed', detail: `Edited ${described.join('; ')}`, by, edits: edited });
  // The failed index carries the values for field filters too. Written first: if the update then fails, it
  // only offers a candidate that the list checks against the operation. The hour entry, which listings show as
  // it is, follows the operation.
  await ctx.store.operationIndex.putFailed(op);
  let newEtag: string;
  try {
    newEtag = await ctx.store.customers.updateOperation({ value: op, etag });
  } catch (error) {
    if (hasStatus(error, 412)) throw etagMismatch();
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
    const op = structuredClone(found.value);
    if (op.status !== 'Failed') return `NOT_FAILED (${op.status})`;
    const now = ctx.clock();
    op.status = 'Pending';
    op.nextAttemptAt = undefined;
    op.waitingOn = undefined;
    op.changeDescription = `Resync requested; waiting to be applied to HQ (last error: ${op.lastError?.code ?? 'none'}).`;
    op.history.push({ at: now.toISOString(), status: 'Pending', detail: 'Resync requested.', by });
    // Listed as pending before the status changes, so the job rings it even if the doorbell below is lost.
    const pending = await ctx.store.pending.mark(op.customerKey, now);
    try {
      await ctx.store.customers.updateOperation({ value: op, etag: found.etag });
    } catch (error) {
      if (hasStatus(error, 412)) continue; // changed meanwhile (another operator, the processor): look again
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
  await ctx.store.tables.ensureCreated();
  const groups = new Map<string, { code: string; count: number; channels: Set<string>; example?: OperationSummary }>();
  let batch: IndexEntry[] = [];
  const flush = async () => {
    const ops = await Promise.all(batch.map((e) => ctx.store.customers.getOperationSummary(e.customerKey, e.seq)));
    for (const [i, entry] of batch.entries()) {
      const op = ops[i];
      if (!op || !entryIsFor(entry, op) || op.status !== 'Failed') {
        if (!op || op.status !== 'Failed') await ctx.store.operationIndex.removeFailed(entry.rowKey, entry.failedAt);
        continue;
      }
      const code = op.lastError?.code ?? 'UNKNOWN';
      const group = groups.get(code) ?? { code, count: 0, channels: new Set<string>() };
      group.count++;
      group.channels.add(op.channel);
      group.example ??= op; // entries come newest first
      groups.set(code, group);
    }
    batch = [];
  };
  for await (const entry of ctx.store.operationIndex.failed({ fields: [] })) {
    batch.push(entry);
    if (batch.length === 64) await flush();
  }
  await flush();
  return [...groups.values()]
    .map((g) => ({ code: g.code, count: g.count, channels: [...g.channels].sort(), example: g.example! }))
    .sort((a, b) => b.count - a.count);
}

/**
 * Validates edited changes the way a submit is validated: a create must be a whole customer (null removes a
 * field), an edit a valid patch (null removes the field from the customer when applied).
 */
function validChanges(type: Operation['type'], changes: Changes): Changes {
  const result =
    type === 'Create'
      ? customerSchema.safeParse(applyChanges(undefined, changes))
      : customerPatchSchema.safeParse(unflatten(changes));
  if (!result.success) {
    const errors = Object.fromEntries(
      Object.entries(fieldErrors(result.error)).map(([k, v]) => [`attributes.${k}`, v]),
    );
    throw new DomainError('VALIDATION_FAILED', 'The edited operation would not be a valid customer.', errors);
  }
  return type === 'Create' ? Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== null)) : changes;
}

const show = (value: AttributeValue) => (value === null ? '(none)' : JSON.stringify(value));

const etagMismatch = () =>
  new DomainError('ETAG_MISMATCH', 'The operation changed since you read it; read it again and reapply your edit.');
