import { odata, type TableClient, type TableEntity } from '@azure/data-tables';

import type { Customer } from '../domain/customer';
import type { CustomerFeed, FeedEntry, FeedItem, FeedPage } from '../domain/ports';
import { seqRowKey } from './customer-store';
import { packJson, unpackJson } from './tables';
import { type Action, submitTransaction } from './transaction';
import type { WriteBatcher } from './write-batcher';

/**
 * Table `CustomerFeed` — the channels' feed of customers created or changed in HQ.
 * PartitionKey = the second of the change (`2026-11-22T10:15:30`, a prefix of the RowKey),
 * RowKey = `<appliedAt ISO>|<customer key>|<op-seq>`. An entry's key is fixed by the operation it records:
 * writing it again after a crash overwrites the same entity, never adds a second one. Small partitions keep
 * writes spread (Azurite scans the partition for every point write) and let concurrent rounds share a
 * transaction; since the bucket prefixes the RowKey, (PartitionKey, RowKey) order is time order and a reader
 * pages with one range query from its cursor. Entries written when buckets were ten seconds long
 * (`2026-11-22T10:15:3`) sort just before the seconds they hold, so a range starts at its ten-second bucket.
 */
const bucketOf = (rowKey: string) => rowKey.slice(0, 19);
const tenSecondBucketOf = (rowKey: string) => rowKey.slice(0, 18);

export class TableCustomerFeed implements CustomerFeed {
  constructor(
    private readonly table: TableClient,
    private readonly writer: WriteBatcher,
  ) {}

  async append(entries: FeedEntry[]): Promise<void> {
    await Promise.all(entries.map((e) => this.writer.upsert(toEntity(e))));
  }

  /** Deletes the entries changed before `day` (retention); returns how many. */
  async deleteBefore(day: string): Promise<number> {
    let deleted = 0;
    const filter = odata`PartitionKey lt ${day}`;
    const batches = new Map<string, Action[]>();
    const flush = async (actions: Action[]) => {
      await submitTransaction(this.table, actions);
      deleted += actions.length;
    };
    for await (const e of this.table.listEntities({ queryOptions: { filter, select: ['PartitionKey', 'RowKey'] } })) {
      const actions = batches.get(e.partitionKey!) ?? [];
      batches.set(e.partitionKey!, actions);
      actions.push(['delete', { partitionKey: e.partitionKey!, rowKey: e.rowKey! }]);
      if (actions.length === 100) {
        batches.delete(e.partitionKey!);
        await flush(actions);
      }
    }
    for (const actions of batches.values()) await flush(actions);
    return deleted;
  }

  /**
   * Entries after the cursor up to `cutoff`, oldest first. The cutoff sits a little in the past so that an
   * entry stamped just before a reader's cursor, but written a moment later, is not skipped.
   */
  async read(after: string | undefined, cutoff: string, limit: number): Promise<FeedPage> {
    const from = after ?? '';
    const filter = odata`PartitionKey ge ${tenSecondBucketOf(from)} and PartitionKey le ${bucketOf(cutoff)} and RowKey gt ${from} and RowKey lt ${cutoff}`;
    const items: FeedItem[] = [];
    let cursor = after;
    for await (const page of this.table.listEntities({ queryOptions: { filter } }).byPage({ maxPageSize: limit })) {
      for (const entity of page) {
        items.push(toItem(entity));
        cursor = entity.rowKey!;
        if (items.length >= limit) return { items, cursor };
      }
    }
    // Everything before the cutoff has been read: resume there, so the next range starts at a recent bucket
    // (never moving a cursor back, which would repeat entries).
    return { items, cursor: cursor !== undefined && cursor > cutoff ? cursor : cutoff };
  }
}

function toEntity(e: FeedEntry): TableEntity {
  return {
    partitionKey: bucketOf(e.changedAt),
    rowKey: `${e.changedAt}|${e.customerKey}|${seqRowKey(e.seq)}`,
    customerAccount: e.customerAccount,
    asyncCustomerAccount: e.asyncCustomerAccount,
    changedAt: e.changedAt,
    ...(e.deleted ? { deleted: true } : {}),
    ...packJson('customer', e.customer),
  };
}

function toItem(e: Record<string, unknown>): FeedItem {
  return {
    customerAccount: e.customerAccount as string,
    ...(e.asyncCustomerAccount ? { asyncCustomerAccount: e.asyncCustomerAccount as string } : {}),
    customer: unpackJson<Customer>(e, 'customer')!,
    ...(e.deleted === true ? { deleted: true as const } : {}),
    changedAt: e.changedAt as string,
  };
}
