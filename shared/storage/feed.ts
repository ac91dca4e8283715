import { odata, type TableClient, type TableEntity, type TransactionAction } from '@azure/data-tables';

import type { Customer } from '../domain/customer';
import { seqRowKey } from '../domain/operation';
import { getOrUndefined, hasStatus, packJson, unpackJson } from './tables';

/**
 * Table `CustomerFeed` — the channels' feed of customers created or changed in HQ.
 * PartitionKey = UTC day of the change (`2026-11-22`), RowKey = `<appliedAt ISO>|<customer key>|<op-seq>`,
 * so a day is one partition read in order, and an entry's key is fixed by the operation it records: writing
 * it again after a crash overwrites the same entity, never adds a second one.
 * A marker entity (PartitionKey `meta`, RowKey `firstDay`) says where the feed starts.
 * Queries: per day from a cursor, `RowKey gt cursor and RowKey le cutoff`, days walked forward.
 */
export interface FeedItem {
  customerAccount: string;
  asyncCustomerAccount?: string;
  customer: Customer;
  changedAt: string;
}

export interface FeedEntry extends FeedItem {
  customerKey: string;
  seq: number;
}

export interface FeedPage {
  items: FeedItem[];
  cursor: { day: string; rowKey: string } | undefined;
}

const META = 'meta';
const dayOf = (iso: string) => iso.slice(0, 10);

export class CustomerFeed {
  /** The earliest feed day this process knows is recorded in the marker. */
  private firstDay: string | undefined;

  constructor(private readonly table: TableClient) {}

  async append(entries: FeedEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.noteDay(entries.map((e) => dayOf(e.changedAt)).sort()[0]!);
    await Promise.all(entries.map((e) => this.table.upsertEntity(toEntity(e), 'Replace')));
  }

  /** Keeps the `firstDay` marker at the earliest day that has entries (a repaired entry can be older). */
  private async noteDay(day: string): Promise<void> {
    if (this.firstDay !== undefined && this.firstDay <= day) return;
    for (;;) {
      const marker = await getOrUndefined<{ day: string }>(this.table, META, 'firstDay');
      if (marker && marker.day <= day) {
        this.firstDay = marker.day;
        return;
      }
      const entity = { partitionKey: META, rowKey: 'firstDay', day };
      try {
        if (marker) await this.table.updateEntity(entity, 'Replace', { etag: marker.etag });
        else await this.table.createEntity(entity);
        this.firstDay = day;
        return;
      } catch (error) {
        if (!hasStatus(error, 409, 412)) throw error; // another writer moved it: read again
      }
    }
  }

  /** Deletes the days before `day` (retention) and moves the start marker; returns the entries deleted. */
  async deleteBefore(day: string): Promise<number> {
    const marker = await getOrUndefined<{ day: string }>(this.table, META, 'firstDay');
    if (!marker || marker.day >= day) return 0;
    let deleted = 0;
    for (let d = marker.day; d < day; d = nextDay(d)) {
      let batch: TransactionAction[] = [];
      const flush = async () => {
        if (batch.length > 0) await this.table.submitTransaction(batch);
        deleted += batch.length;
        batch = [];
      };
      const filter = odata`PartitionKey eq ${d}`;
      for await (const e of this.table.listEntities({ queryOptions: { filter, select: ['RowKey'] } })) {
        batch.push(['delete', { partitionKey: d, rowKey: e.rowKey! }]);
        if (batch.length === 100) await flush();
      }
      await flush();
    }
    await this.table.updateEntity({ partitionKey: META, rowKey: 'firstDay', day }, 'Replace', { etag: marker.etag });
    this.firstDay = day;
    return deleted;
  }

  /**
   * Entries after the cursor up to `cutoff`, oldest first. The cutoff sits a little in the past so that an
   * entry stamped just before a reader's cursor, but written a moment later, is not skipped.
   */
  async read(after: FeedPage['cursor'], cutoff: string, limit: number): Promise<FeedPage> {
    let day = after?.day ?? (await getOrUndefined<{ day: string }>(this.table, META, 'firstDay'))?.day;
    if (!day) return { items: [], cursor: after };
    const lastDay = dayOf(cutoff);
    const items: FeedItem[] = [];
    let cursor = after;
    while (day <= lastDay && items.length < limit) {
      const from = cursor && cursor.day === day ? cursor.rowKey : '';
      const filter = odata`PartitionKey eq ${day} and RowKey gt ${from} and RowKey lt ${cutoff}`;
      const pages = this.table.listEntities({ queryOptions: { filter } }).byPage({ maxPageSize: limit - items.length });
      for await (const page of pages) {
        for (const entity of page) {
          items.push(toItem(entity));
          cursor = { day, rowKey: entity.rowKey! };
          if (items.length >= limit) break;
        }
        if (items.length >= limit) break;
      }
      if (items.length < limit) day = nextDay(day);
    }
    // Everything before the cutoff's day has been read: start there next time instead of walking empty days.
    if (items.length < limit && (!cursor || cursor.day < lastDay)) cursor = { day: lastDay, rowKey: '' };
    return { items, cursor };
  }
}

function toEntity(e: FeedEntry): TableEntity {
  return {
    partitionKey: dayOf(e.changedAt),
    rowKey: `${e.changedAt}|${e.customerKey}|${seqRowKey(e.seq)}`,
    customerAccount: e.customerAccount,
    asyncCustomerAccount: e.asyncCustomerAccount,
    changedAt: e.changedAt,
    ...packJson('customer', e.customer),
  };
}

function toItem(e: Record<string, unknown>): FeedItem {
  return {
    customerAccount: e.customerAccount as string,
    ...(e.asyncCustomerAccount ? { asyncCustomerAccount: e.asyncCustomerAccount as string } : {}),
    customer: unpackJson<Customer>(e, 'customer')!,
    changedAt: e.changedAt as string,
  };
}

function nextDay(day: string): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}
