import { entryIsFor } from '../domain/ports';
import type { SyncContext } from '../operations/context';
import { JOB_NAMES } from './names';

const DAY_MS = 86_400_000;

/**
 * Deletes audit data older than the retention period: Synced operations with their index entries, then an
 * hour's index table once nothing in it is kept, old feed days and old job runs. An operation that is still
 * Pending or Failed is never deleted, however old: it still needs an operator (or the processor).
 */
export async function auditRetention(ctx: SyncContext): Promise<{ counts: Record<string, number>; message: string }> {
  const { store } = ctx;
  const cutoff = new Date(ctx.clock().getTime() - ctx.retentionDays * DAY_MS).toISOString();
  const counts = {
    operationsDeleted: 0,
    operationsKept: 0,
    indexHoursDropped: 0,
    feedEntriesDeleted: 0,
    jobRunsDeleted: 0,
    deadLettersDeleted: 0,
  };

  for (const hour of await store.operationIndex.hours(cutoff)) {
    let kept = 0;
    for await (const entry of store.operationIndex.entriesOfHour(hour)) {
      const op = await store.customers.getOperation(entry.customerKey, entry.seq);
      const orphan = !op || !entryIsFor(entry, op.value);
      if (!orphan && op.value.status !== 'Synced') {
        kept++;
        continue;
      }
      if (!orphan && !(await store.customers.deleteOperation(op))) {
        kept++; // changed while we looked: keep it this time
        continue;
      }
      await store.operationIndex.remove(hour, entry);
      if (!orphan) counts.operationsDeleted++;
    }
    counts.operationsKept += kept;
    if (kept === 0) {
      await store.operationIndex.dropHour(hour);
      counts.indexHoursDropped++;
    }
  }
  counts.feedEntriesDeleted = await store.feed.deleteBefore(cutoff.slice(0, 10));
  counts.jobRunsDeleted = await store.jobRuns.deleteBefore(JOB_NAMES, cutoff);
  counts.deadLettersDeleted = await store.deadLetters.deleteBefore(cutoff);
  return {
    counts,
    message:
      `Deleted ${counts.operationsDeleted} operations older than ${ctx.retentionDays} days ` +
      `(kept ${counts.operationsKept} still Pending or Failed), ${counts.feedEntriesDeleted} feed entries` +
      `, ${counts.jobRunsDeleted} job runs and ${counts.deadLettersDeleted} dead letters.`,
  };
}
