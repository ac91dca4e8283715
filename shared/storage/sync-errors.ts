import { odata, type TableClient } from '@azure/data-tables';

import { SYNC_ERROR_KINDS, type SyncErrorKind } from '../domain/coupling';
import type { SyncErrorEntry, SyncErrorIndex } from '../domain/ports';
import { hasStatus, invertedTime, packJson, unpackJson } from './tables';

/**
 * Table `SyncErrors` — PartitionKey = error kind, RowKey = `<inverted failedOn>|<customer key>` → the list
 * item. Each kind's partition lists newest first; the list of all kinds merges the five partitions, which share
 * one RowKey order, so one RowKey is the continuation position for either listing. The record's own error is
 * the truth: the crm-sync job drops an entry whose record no longer has that error.
 */
const rowKeyOf = (e: Pick<SyncErrorEntry, 'failedOn' | 'customerKey'>) =>
  `${invertedTime(e.failedOn)}|${e.customerKey}`;

export class TableSyncErrors implements SyncErrorIndex {
  constructor(private readonly table: TableClient) {}

  async put(entry: SyncErrorEntry): Promise<void> {
    await this.table.upsertEntity(
      { partitionKey: entry.kind, rowKey: rowKeyOf(entry), ...packJson('entry', entry) },
      'Replace',
    );
  }

  async remove(entry: Pick<SyncErrorEntry, 'kind' | 'failedOn' | 'customerKey'>): Promise<void> {
    await this.table.deleteEntity(entry.kind, rowKeyOf(entry)).catch((error: unknown) => {
      if (!hasStatus(error, 404)) throw error; // already gone
    });
  }

  /** One query per kind's partition, reading only the keys. */
  async count(): Promise<number> {
    const perKind = await Promise.all(
      SYNC_ERROR_KINDS.map(async (kind) => {
        let count = 0;
        const filter = odata`PartitionKey eq ${kind}`;
        for await (const _ of this.table.listEntities({ queryOptions: { filter, select: ['RowKey'] } })) count++;
        return count;
      }),
    );
    return perKind.reduce((a, b) => a + b, 0);
  }

  async page(kind: SyncErrorKind | undefined, top: number, after = '') {
    const kinds = kind ? [kind] : SYNC_ERROR_KINDS;
    const perKind = await Promise.all(
      kinds.map(async (k) => {
        const entries: { rowKey: string; entry: SyncErrorEntry }[] = [];
        const filter = odata`PartitionKey eq ${k} and RowKey gt ${after}`;
        // One more than a page: whether anything follows the page is known without another request.
        const pages = this.table.listEntities<Record<string, unknown>>({ queryOptions: { filter } }).byPage({
          maxPageSize: top + 1,
        });
        for await (const page of pages) {
          for (const e of page) entries.push({ rowKey: e.rowKey!, entry: unpackJson<SyncErrorEntry>(e, 'entry')! });
          if (entries.length > top) break;
        }
        return entries.slice(0, top + 1);
      }),
    );
    const merged = perKind.flat().sort((a, b) => a.rowKey.localeCompare(b.rowKey));
    const page = merged.slice(0, top);
    return {
      items: page.map((e) => e.entry),
      ...(merged.length > top ? { next: page.at(-1)!.rowKey } : {}),
    };
  }
}
