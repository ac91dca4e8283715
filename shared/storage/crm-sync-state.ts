import { odata, type TableClient } from '@azure/data-tables';

import type { CrmCursor, CrmSyncState, Lease } from '../domain/ports';
import { isWriteConflict } from '../domain/versioned';
import { conditionally, getOrUndefined, hasStatus } from './tables';

/**
 * Table `CrmSyncState`:
 *   PartitionKey `lease`, RowKey = job name   the job's lease: holder and expiry, taken and released with ETags,
 *                                             so the timer and a manual run never overlap across instances
 *   PartitionKey `cursor`, RowKey ''          the customer feed's cursor and each CRM table's delta link
 *   PartitionKey `awaiting`, RowKey = key     customers the next run looks at again: with an operation from a CRM
 *                                             change not yet seen applied, or whose error an operator retried
 */
export class TableCrmSyncState implements CrmSyncState {
  constructor(private readonly table: TableClient) {}

  async acquire(job: string, holder: string, now: Date, until: Date): Promise<Lease | undefined> {
    const current = await getOrUndefined<{ holder: string; expiresAt: string }>(this.table, 'lease', job);
    if (current && current.holder !== '' && current.expiresAt > now.toISOString()) return undefined;
    const entity = { partitionKey: 'lease', rowKey: job, holder, expiresAt: until.toISOString() };
    try {
      const answer = await conditionally(() =>
        current ? this.table.updateEntity(entity, 'Replace', { etag: current.etag }) : this.table.createEntity(entity),
      );
      return { holder, etag: answer.etag! };
    } catch (error) {
      if (isWriteConflict(error)) return undefined; // another instance took it first
      throw error;
    }
  }

  async release(job: string, lease: Lease): Promise<void> {
    const entity = { partitionKey: 'lease', rowKey: job, holder: '', expiresAt: '' };
    // Only our own lease: if it expired and another run took it, that run's lease stays.
    await conditionally(() => this.table.updateEntity(entity, 'Replace', { etag: lease.etag })).catch(
      (error: unknown) => {
        if (!isWriteConflict(error)) throw error;
      },
    );
  }

  async cursor(): Promise<CrmCursor> {
    const entity = await getOrUndefined<{ cursor: string }>(this.table, 'cursor', '');
    return entity ? (JSON.parse(entity.cursor) as CrmCursor) : { deltaLinks: {} };
  }

  async saveCursor(cursor: CrmCursor): Promise<void> {
    await this.table.upsertEntity({ partitionKey: 'cursor', rowKey: '', cursor: JSON.stringify(cursor) }, 'Replace');
  }

  async awaiting(): Promise<string[]> {
    const keys: string[] = [];
    const filter = odata`PartitionKey eq ${'awaiting'}`;
    for await (const e of this.table.listEntities({ queryOptions: { filter, select: ['RowKey'] } }))
      keys.push(e.rowKey!);
    return keys;
  }

  async await(customerKey: string): Promise<void> {
    await this.table.upsertEntity({ partitionKey: 'awaiting', rowKey: customerKey }, 'Replace');
  }

  async settled(customerKey: string): Promise<void> {
    await this.table.deleteEntity('awaiting', customerKey).catch((error: unknown) => {
      if (!hasStatus(error, 404)) throw error; // already gone
    });
  }
}
