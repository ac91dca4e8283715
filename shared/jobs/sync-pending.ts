import type { Doorbell } from '../messaging/doorbell';
import type { SyncContext } from '../operations/context';

/**
 * The safety net behind the doorbells (the back office's "synchronize customers and channel requests" job):
 * every customer in the pending index whose doorbell is overdue, or whose automatic retry is due, is rung
 * again. Ringing is harmless when nothing is left to do, so the job never needs to be exact, only complete.
 */
export async function syncPendingOperations(
  ctx: SyncContext,
): Promise<{ counts: Record<string, number>; message: string }> {
  await ctx.store.tables.ensureCreated();
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
  const markersCleared = await sweepFeedMarkers(ctx, now, due);
  await ctx.doorbell.ring(due);
  return {
    counts: { pendingCustomers, rerung: due.length, retriesDue, markersCleared },
    message: due.length
      ? `Rang the doorbell of ${due.length} of ${pendingCustomers} pending customers (${retriesDue} retries due).`
      : `${pendingCustomers} pending customers, none overdue.`,
  };
}

/** No processing round runs this long; a marker this old was left by a crashed round. */
const STALE_MARKER_MS = 2 * 60_000;

/**
 * Removes feed in-flight markers left by crashed rounds once their customer's feed has caught up (nothing
 * applied but unpublished); a customer that has not caught up is rung, so its next round republishes first.
 */
async function sweepFeedMarkers(ctx: SyncContext, now: Date, due: Doorbell[]): Promise<number> {
  const staleBefore = new Date(now.getTime() - STALE_MARKER_MS).toISOString();
  let cleared = 0;
  for (const marker of await ctx.store.feedInFlight.list()) {
    if (marker.at > staleBefore) continue;
    const record = await ctx.store.customers.getRecord(marker.customerKey);
    if (!record || record.value.publishedThrough >= record.value.appliedThrough) {
      await ctx.store.feedInFlight.end(marker);
      cleared++;
    } else if (!due.some((d) => d.customerKey === marker.customerKey)) {
      due.push({ customerKey: marker.customerKey });
    }
  }
  return cleared;
}
