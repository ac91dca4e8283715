import type { AlertMetric } from '../domain/alerts';
import { entryIsFor, type IndexEntry } from '../domain/ports';
import type { SyncContext } from '../operations/context';

/** Customers read at once when counting overdue operations, and operations read at once per customer. */
const PARALLEL = 16;

/**
 * The alert metrics, counted from the stores that already exist (no index of their own). One reader serves one
 * run: rules with the same metric and window share a count, and the failed index is read once for both metrics
 * that need it. What each costs (the README's "Alerts" lists it too):
 *
 * - `syncErrors`: every open sync error, whatever the window — one query per kind's partition, keys only.
 * - `deadLetters`: dead letters received within the window — one range query in their partition, keys only.
 * - `failedOperations`: operations that are Failed now and failed within the window — the failed index (only the
 *   operations Failed now, however old) read once per run, and a point read of each operation it counts, so an
 *   entry that a crash left behind is not counted.
 * - `pendingOverdue`: operations still Pending that were submitted before the window — only customers with work
 *   outstanding can have one: those in the pending index (4 partitions) and those whose operations wait behind a
 *   failure (the failed index's customers; the processor clears their pending entry). For each, its record and
 *   its unapplied operations' heads in submission order, stopping at the first one submitted within the window.
 *   So the cost follows the backlog, not the history.
 */
export class MetricReader {
  private readonly counts = new Map<string, Promise<number>>();
  private failedIndex?: Promise<IndexEntry[]>;

  constructor(
    private readonly ctx: SyncContext,
    private readonly now: Date,
  ) {}

  value(metric: AlertMetric, windowMinutes: number): Promise<number> {
    const key = `${metric}|${windowMinutes}`;
    let count = this.counts.get(key);
    if (!count) {
      const since = new Date(this.now.getTime() - windowMinutes * 60_000).toISOString();
      count = this.count(metric, since);
      this.counts.set(key, count);
    }
    return count;
  }

  private count(metric: AlertMetric, since: string): Promise<number> {
    const { store } = this.ctx;
    switch (metric) {
      case 'syncErrors':
        return store.syncErrors.count();
      case 'deadLetters':
        return store.deadLetters.countSince(since);
      case 'failedOperations':
        return this.failedSince(since);
      case 'pendingOverdue':
        return this.pendingBefore(since);
    }
  }

  private failed(): Promise<IndexEntry[]> {
    return (this.failedIndex ??= (async () => {
      const entries: IndexEntry[] = [];
      for await (const entry of this.ctx.store.operationIndex.failedEntries()) entries.push(entry);
      return entries;
    })());
  }

  private async failedSince(since: string): Promise<number> {
    const candidates = (await this.failed()).filter((e) => e.failedAt !== undefined && e.failedAt >= since);
    const counted = await mapInBatches(candidates, async (entry) => {
      const op = await this.ctx.store.customers.getOperationHead(entry.customerKey, entry.seq);
      return op && entryIsFor(entry, op) && op.status === 'Failed' && op.lastError?.at === entry.failedAt ? 1 : 0;
    });
    return sum(counted);
  }

  private async pendingBefore(cutoff: string): Promise<number> {
    const customers = new Set<string>();
    for await (const entry of this.ctx.store.pending.list()) customers.add(entry.customerKey);
    for (const entry of await this.failed()) customers.add(entry.customerKey);
    return sum(await mapInBatches([...customers], (key) => this.pendingOf(key, cutoff)));
  }

  /** A customer's Pending operations submitted before `cutoff`. */
  private async pendingOf(customerKey: string, cutoff: string): Promise<number> {
    const { customers } = this.ctx.store;
    const record = await customers.getRecord(customerKey);
    if (!record) return 0;
    const { appliedThrough, nextSeq } = record.value;
    let count = 0;
    for (let first = appliedThrough + 1; first < nextSeq; first += PARALLEL) {
      const seqs = Array.from({ length: Math.min(PARALLEL, nextSeq - first) }, (_, i) => first + i);
      const heads = await Promise.all(seqs.map((seq) => customers.getOperationHead(customerKey, seq)));
      for (const op of heads) {
        if (!op) continue;
        // Sequence numbers follow submission: from the first one inside the window on, none is overdue.
        if (op.operationTimestamp >= cutoff) return count;
        if (op.status === 'Pending') count++;
      }
    }
    return count;
  }
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

async function mapInBatches<T, R>(items: T[], map: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += PARALLEL)
    results.push(...(await Promise.all(items.slice(i, i + PARALLEL).map(map))));
  return results;
}
