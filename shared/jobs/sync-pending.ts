import type { Doorbell } from '../domain/doorbell';
import type { SyncContext } from '../operations/context';
import { feedEntry } from '../operations/process';

/**
 * The safety net behind the doorbells (the back office's "synchronize customers and channel requests" job):
 * every customer in the pending index whose doorbell is overdue, or whose automatic retry is due, is rung
 * again. Ringing is harmless when nothing is left to do, so the job never needs to be exact, only complete.
 */
export async function syncPendingOperations(
  ctx: SyncContext,
): Promise<{ counts: Record<string, number>; message: string }> {
  const now = ctx.clock();
  const overdueBefore = new Date(now.getTime() - ctx.pendingResendAfterMs).toISOString();
  const nowIso = now.toISOString();
  let pendingCustomers = 0;
  let retriesDue = 0;
  const due: Doorbell[] = [];
  for await (const entry of ctx.store.pending.list()) {
    pendingCustomers++;
    if (entry.nextAttemptAt) {
      if (entry.nextAttemptAt <= nowIso) {
        retriesDue++;
        due.push({ customerKey: entry.customerKey, pending: entry.etag });
      }
    } else if (entry.updatedAt <= overdueBefore) {
      due.push({ customerKey: entry.customerKey, pending: entry.etag });
    }
  }
  const markersCleared = await sweepFeedMarkers(ctx, now);
  await ctx.doorbell.ring(due);
  return {
    counts: { pendingCustomers, rerung: due.length, retriesDue, markersCleared },
    message: due.length
      ? `Rang the doorbell of ${due.length} of ${pendingCustomers} pending customers (${retriesDue} retries due).`
      : `${pendingCustomers} pending customers, none overdue.`,
  };
}

/**
 * Finishes the rounds that crashed between their commit and their feed entries: the marker names the
 * operations the round may have applied, and every one of them that is Synced gets its entry written again
 * (under its original key, so an entry that did land stays single). Only then does the marker go, so until
 * now readers have held back and no cursor has moved past those entries. Their index entries are written
 * again too, so listings show the state the round committed.
 */
async function sweepFeedMarkers(ctx: SyncContext, now: Date): Promise<number> {
  const staleBefore = new Date(now.getTime() - ctx.feedMarkerStaleMs).toISOString();
  let cleared = 0;
  for (const marker of await ctx.store.feedInFlight.list()) {
    if (marker.at > staleBefore) continue;
    const record = await ctx.store.customers.getRecord(marker.customerKey);
    const entries = [];
    const indexed = [];
    for (let seq = marker.fromSeq; record && seq <= marker.toSeq; seq++) {
      const op = await ctx.store.customers.getOperation(marker.customerKey, seq);
      if (!op) continue;
      indexed.push(op.value);
      // The per-operation customer snapshot is not kept; the repaired entry carries the customer as it is now
      // (or, deleted, as it was).
      if (op.value.status === 'Synced' && op.value.appliedAt)
        entries.push(feedEntry(record.value, op.value, op.value.appliedAt));
    }
    await Promise.all([ctx.store.feed.append(entries), ...indexed.map((op) => ctx.store.operationIndex.update(op))]);
    await ctx.store.feedInFlight.end(marker);
    cleared++;
  }
  return cleared;
}
