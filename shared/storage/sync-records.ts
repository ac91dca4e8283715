import type { TableClient } from '@azure/data-tables';

import type { SyncRecord } from '../domain/coupling';
import type { CrmTable } from '../domain/crm-mapping';
import type { SyncRecords } from '../domain/ports';
import type { Versioned } from '../domain/versioned';
import { conditionally, getOrUndefined, packJson, unpackJson } from './tables';

/**
 * Table `SyncRecords` — PartitionKey = customer key, RowKey '' → the customer's SyncRecord (JSON).
 * Table `CrmRows` — PartitionKey = CRM row id, RowKey = CRM table → the customer key it is coupled with.
 *
 * One partition per customer and per row keeps every lookup a point read and spreads writes. The reverse
 * entry is written before the record names the row, so a crash in between leaves an entry whose customer
 * does not name the row back, which readers ignore (they check the record), never a coupled row that cannot
 * be found from its CRM id.
 */
const ROW = '';

export class TableSyncRecords implements SyncRecords {
  constructor(
    private readonly records: TableClient,
    private readonly rows: TableClient,
  ) {}

  async get(customerKey: string): Promise<Versioned<SyncRecord> | undefined> {
    const entity = await getOrUndefined<Record<string, unknown>>(this.records, customerKey, ROW);
    return entity && { value: unpackJson<SyncRecord>(entity, 'record')!, etag: entity.etag };
  }

  async save(record: SyncRecord, etag?: string): Promise<string> {
    const entity = { partitionKey: record.customerKey, rowKey: ROW, ...packJson('record', record) };
    const answer = await conditionally(() =>
      etag === undefined ? this.records.createEntity(entity) : this.records.updateEntity(entity, 'Replace', { etag }),
    );
    return answer.etag!;
  }

  async customerKeyOfRow(crmTable: CrmTable, crmId: string): Promise<string | undefined> {
    const entity = await getOrUndefined<{ customerKey: string }>(this.rows, crmId.toLowerCase(), crmTable);
    return entity?.customerKey;
  }

  async linkRow(crmTable: CrmTable, crmId: string, customerKey: string): Promise<void> {
    await this.rows.upsertEntity({ partitionKey: crmId.toLowerCase(), rowKey: crmTable, customerKey }, 'Replace');
  }

  async *list(): AsyncIterable<SyncRecord> {
    for await (const entity of this.records.listEntities<Record<string, unknown>>()) {
      yield unpackJson<SyncRecord>(entity, 'record')!;
    }
  }
}
