import { randomBytes } from 'node:crypto';

import { odata, type TableClient } from '@azure/data-tables';

import type { SyncLogEntry } from '../domain/coupling';
import type { SyncLog } from '../domain/ports';
import { invertedTime, packJson, unpackJson } from './tables';
import type { WriteBatcher } from './write-batcher';

/**
 * Table `SyncLog` — PartitionKey = customer key, RowKey = `<inverted time>-<random>` → one log line. A
 * record's log is its partition, newest first; a page resumes after the RowKey it ended at.
 */
export class TableSyncLog implements SyncLog {
  constructor(
    private readonly table: TableClient,
    private readonly writer: WriteBatcher,
  ) {}

  async append(customerKey: string, entries: SyncLogEntry[]): Promise<void> {
    await Promise.all(
      entries.map((entry) =>
        this.writer.upsert({
          partitionKey: customerKey,
          rowKey: `${invertedTime(entry.at)}-${randomBytes(4).toString('hex')}`,
          ...packJson('entry', entry),
        }),
      ),
    );
  }

  async page(customerKey: string, top: number, after = '') {
    const filter = odata`PartitionKey eq ${customerKey} and RowKey gt ${after}`;
    const items: SyncLogEntry[] = [];
    let last = '';
    const pages = this.table.listEntities<Record<string, unknown>>({ queryOptions: { filter } }).byPage({
      maxPageSize: top + 1,
    });
    for await (const page of pages) {
      for (const e of page) {
        if (items.length === top) return { items, next: last };
        items.push(unpackJson<SyncLogEntry>(e, 'entry')!);
        last = e.rowKey!;
      }
    }
    return { items };
  }
}
