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
  const due: string[] = [];
  for await (const entry of ctx.store.pending.list()) {
    pendingCustomers++;
    if (entry.nextAttemptAt) {
      if (entry.nextAttemptAt <= nowIso) {
        retriesDue++;
        due.push(entry.customerKey);
      }
    } else if (entry.updatedAt <= overdueBefore) {
      due.push(entry.customerKey);
    }
  }
  await ctx.doorbell.ring(due);
  return {
    counts: { pendingCustomers, rerung: due.length, retriesDue },
    message: due.length
      ? `Rang the doorbell of ${due.length} of ${pendingCustomers} pending customers (${retriesDue} retries due).`
      : `${pendingCustomers} pending customers, none overdue.`,
  };
}
