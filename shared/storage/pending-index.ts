import { odata, type TableClient } from '@azure/data-tables';

import type { PendingEntry, PendingIndex } from '../domain/ports';
import { hasStatus, shardName, shardOf as shardOfKey } from './tables';
import type { WriteBatcher } from './write-batcher';

/**
 * Table `PendingCustomers` — PartitionKey `shard-00`..`shard-03` (hash of the customer key), RowKey = customer
 * key → { updatedAt, nextAttemptAt? }. Lists every customer that has operations still to apply, so the
 * `sync-pending-operations` job can re-ring their doorbells after a lost message, a crash or a retry delay.
 *
 * It is written before an operation is accepted and cleared by the processor with the ETag it read before
 * processing: a submit that lands meanwhile changes the ETag, the clear fails, and the customer stays listed.
 * Sharding keeps the write rate per partition bounded; the job reads every shard (a bounded set).
 *
 * Four shards: marks from concurrent submits share transactions, and a shard holds only the customers with
 * work outstanding (the backlog), so partitions stay small. Azure takes ~2,000 writes/s per partition.
 */
const SHARDS = 4;
const shardOf = (customerKey: string) => shardOfKey(customerKey, SHARDS);

export class TablePendingIndex implements PendingIndex {
  constructor(
    private readonly table: TableClient,
    private readonly writer: WriteBatcher,
  ) {}

  /** Lists the customer (again); returns the entry's ETag, which the doorbell carries to the processor. */
  async mark(customerKey: string, now: Date, nextAttemptAt?: string): Promise<string | undefined> {
    return this.writer.upsert({
      partitionKey: shardOf(customerKey),
      rowKey: customerKey,
      updatedAt: now.toISOString(),
      nextAttemptAt,
    });
  }

  async get(customerKey: string): Promise<PendingEntry | undefined> {
    try {
      const e = await this.table.getEntity<{ updatedAt: string; nextAttemptAt?: string }>(
        shardOf(customerKey),
        customerKey,
      );
      return { customerKey, updatedAt: e.updatedAt, nextAttemptAt: e.nextAttemptAt, etag: e.etag };
    } catch (error) {
      if (hasStatus(error, 404)) return undefined;
      throw error;
    }
  }

  /**
   * Clears the entry only if nobody marked it since the version with this ETag. Clears of one shard that
   * processors make at the same time share a transaction.
   */
  async clear(entry: Pick<PendingEntry, 'customerKey' | 'etag'>): Promise<void> {
    try {
      await this.writer.deleteIf(shardOf(entry.customerKey), entry.customerKey, entry.etag);
    } catch (error) {
      if (!hasStatus(error, 404, 412)) throw error;
    }
  }

  async *list(): AsyncIterable<PendingEntry> {
    for (let shard = 0; shard < SHARDS; shard++) {
      const filter = odata`PartitionKey eq ${shardName(shard)}`;
      const entities = this.table.listEntities<{ updatedAt: string; nextAttemptAt?: string }>({
        queryOptions: { filter },
      });
      for await (const e of entities) {
        yield { customerKey: e.rowKey!, updatedAt: e.updatedAt, nextAttemptAt: e.nextAttemptAt, etag: e.etag };
      }
    }
  }
}
