import { odata, type TableClient, type TableEntity } from '@azure/data-tables';

import type { Changes } from '../domain/changes';
import type { LastError, ListedOperation, Operation, OperationSummary } from '../domain/operation';
import { hasStatus, invertedTime, TABLE_NAMES, type TableSet } from './tables';

/**
 * Index entities that let operators find operations without scanning the Customers table.
 *
 * Tables `Ops<yyyymmddhh>` — one per UTC hour of the operation's timestamp, so retention drops whole tables and
 * a query only ever touches the hours it asks for. Hours rather than days because Azurite (the local stack)
 * scans a whole table for every query, whatever its partition range: an hour keeps that scan 24 times
 * smaller. On Azure a range query reads only its partitions, and the extra tables cost nothing.
 *   PartitionKey `all|<bucket>`             every operation of the hour
 *   PartitionKey `ch|<channel>|<bucket>`    the channel's operations of the hour
 *   RowKey `<inverted ms>|<operationId>`, so entries list newest first.
 * Table `FailedOperations` — PartitionKey `failed|<bucket>`, same RowKey: the operations that are Failed now.
 *
 * `<bucket>` is the first 9 of the RowKey's 13 digits: ten seconds. Small partitions spread the writes (a
 * partition serves a bounded rate on Azure; Azurite slows down with every entity a partition holds), and the
 * entries of concurrent submits share one and go in one transaction (WriteBatcher). Because the bucket is a
 * prefix of the RowKey, (PartitionKey, RowKey) order is RowKey order: a view is read with one range query
 * over its buckets, newest first, and a continuation RowKey also says which bucket to resume in.
 *
 * An hour entry is the operation's list item — channel, type, accounts, status, change description, last
 * error — plus its changed values (`f_<path>` = value as text), so every filter is evaluated by the service
 * inside the partitions and a listing reads nothing else: one entity per item. It is written after each write
 * of its operation (a submit, a processing round, a resync), so it never shows an operation that does not
 * exist or a state it never had; a crash in between leaves it one state behind until the sweep of the round's
 * feed marker (or the operation's next processing) writes it again.
 *
 * The failed index holds the same entries for the operations that are Failed now, written and removed the
 * same way, so it lists failures however old without walking hours. `/failures` checks each entry against its
 * operation (and removes those left behind); listings show them as they are.
 */
export interface IndexEntry {
  rowKey: string;
  operationId: string;
  /** The submit request that wrote the entry: an operation with another request id is not this entry's. */
  requestId: string;
  customerKey: string;
  seq: number;
  channel: string;
  type: string;
  /** Last error code. */
  code?: string;
  /** When the failure happened (failed index only). */
  failedAt?: string;
  /** The operation's list item as of its last write. */
  item: ListedOperation;
}

/** An index entity as stored. */
type StoredEntry = Omit<IndexEntry, 'rowKey' | 'item'> & {
  at: string;
  customerAccount?: string;
  asyncCustomerAccount?: string;
  status: ListedOperation['status'];
  changeDescription: string;
  lastError?: string;
};

export interface IndexQuery {
  /** Inclusive time bounds, ISO. */
  from?: string;
  to?: string;
  type?: string;
  channel?: string;
  fields: { field: string; value: string }[];
  /** Last error code. */
  code?: string;
  /** Status (hour index only: the failed index holds Failed operations). */
  status?: string;
  /** Resume strictly after this RowKey. */
  after?: string;
  /** Entries to fetch per request: about what the caller needs, so it does not read entries it drops. */
  pageSize?: number;
}

export const indexRowKey = (op: Pick<Operation, 'operationTimestamp' | 'operationId'>) =>
  `${invertedTime(op.operationTimestamp)}|${op.operationId}`;
/** Whether an index entry stands for this operation (not an orphan left by a retried or failed submit). */
export const entryIsFor = (entry: IndexEntry, op: OperationSummary) =>
  op.requestId === entry.requestId && indexRowKey(op) === entry.rowKey;

/** The ten-second bucket of a RowKey (or of an inverted-time bound). */
const bucketOf = (rowKey: string) => rowKey.slice(0, 9);
const allView = 'all|';
const channelView = (channel: string) => `ch|${channel}|`;
const FAILED_VIEW = 'failed|';

/** The hour (yyyymmddhh, UTC) of an ISO timestamp: its index table's suffix. */
export const hourOf = (iso: string) => iso.slice(0, 13).replace(/[-T]/g, '');
const HOUR = /^\d{10}$/;
/** Milliseconds of an hour's start; NaN for text that is not a real hour. */
const hourStart = (hour: string) =>
  HOUR.test(hour)
    ? Date.parse(`${hour.slice(0, 4)}-${hour.slice(4, 6)}-${hour.slice(6, 8)}T${hour.slice(8, 10)}:00:00Z`)
    : NaN;
/** Whether the text is a real hour (2026-02-30 or hour 24 are not). */
export const isHour = (hour: string) =>
  !Number.isNaN(hourStart(hour)) && hourOf(new Date(hourStart(hour)).toISOString()) === hour;
const hourBefore = (hour: string) => hourOf(new Date(hourStart(hour) - 3_600_000).toISOString());

/** Property name for a field path: only letters, digits and _ are allowed, so _ - . are escaped. */
export const fieldProperty = (path: string) =>
  `f_${path.replace(/_/g, '_5F').replace(/-/g, '_2D').replace(/\./g, '_2E')}`;

function fieldProperties(changes: Changes): Record<string, string> {
  const props: Record<string, string> = {};
  for (const [path, value] of Object.entries(changes)) if (value !== null) props[fieldProperty(path)] = String(value);
  return props;
}

export class OperationIndex {
  /** Hour tables this process created (or is creating): concurrent first writes share one createTable. */
  private readonly createdHours = new Map<string, Promise<void>>();

  constructor(private readonly tables: TableSet) {}

  /** Writes (or rewrites, after a repair) the hour entries of an operation. */
  async put(op: Operation): Promise<void> {
    const hour = hourOf(op.operationTimestamp);
    await this.hourTable(hour, true);
    const writer = this.tables.batcher(`Ops${hour}`);
    const entry = entryOf(op);
    const bucket = bucketOf(entry.rowKey);
    await Promise.all(
      [allView, channelView(op.channel)].map((view) => writer.upsert({ ...entry, partitionKey: view + bucket })),
    );
  }

  /**
   * Brings the index in line with an operation just written: its hour entries, and its failed entry — written
   * while it is Failed, removed once it has left the failure recorded in `previous` (its last error before).
   */
  async update(op: Operation, previous?: LastError): Promise<void> {
    await Promise.all([
      this.put(op),
      op.status === 'Failed' ? this.putFailed(op) : undefined,
      op.status !== 'Failed' && previous ? this.removeFailed(indexRowKey(op), previous.at) : undefined,
    ]);
  }

  async putFailed(op: Operation): Promise<void> {
    const entry = entryOf(op);
    await this.tables.batcher(TABLE_NAMES.failedOperations).upsert({
      ...entry,
      partitionKey: FAILED_VIEW + bucketOf(entry.rowKey),
      code: op.lastError?.code ?? 'UNKNOWN',
      failedAt: op.lastError?.at,
    });
  }

  /**
   * Removes an operation's failed entry, but only the one for the failure at `failedAt`: if the operation
   * failed again meanwhile (a processor raced the resync), its new entry stays.
   */
  async removeFailed(rowKey: string, failedAt: string | undefined): Promise<void> {
    const table = this.tables.get('failedOperations');
    const partitionKey = FAILED_VIEW + bucketOf(rowKey);
    try {
      const entry = await table.getEntity<{ failedAt?: string }>(partitionKey, rowKey);
      if (entry.failedAt !== failedAt) return;
      await table.deleteEntity(partitionKey, rowKey, { etag: entry.etag });
    } catch (error) {
      if (!hasStatus(error, 404, 412)) throw error;
    }
  }

  /** An hour's entries matching the query, newest first (none when the hour has no table). */
  async *hour(hour: string, query: IndexQuery): AsyncIterable<IndexEntry> {
    const table = await this.hourTable(hour, false);
    yield* this.scan(table, query.channel === undefined ? allView : channelView(query.channel), query);
  }

  async *failed(query: IndexQuery): AsyncIterable<IndexEntry> {
    // The failed partition mixes channels, so there the channel is a filter rather than a partition.
    const equals: [string, string][] = [];
    if (query.channel !== undefined) equals.push(['channel', query.channel]);
    if (query.code !== undefined) equals.push(['code', query.code]);
    yield* this.scan(this.tables.get('failedOperations'), FAILED_VIEW, query, equals);
  }

  private async *scan(
    table: TableClient,
    view: string,
    query: IndexQuery,
    equals: [property: string, value: string][] = [],
  ): AsyncIterable<IndexEntry> {
    // RowKeys are inverted times, newer is smaller: `to` (or the resume point) bounds from below, `from` from
    // above; the view's buckets between the two bounds are the partitions to read.
    const lower = query.after ?? (query.to ? invertedTime(query.to) : '');
    const upper = query.from ? `${invertedTime(query.from)}|~` : '~';
    // Each condition is its own odata`` template with text before the value: the helper quotes and escapes a
    // string only when it follows other text (a template that starts with a value is left unquoted).
    const conditions = [
      odata`PartitionKey ge ${view + bucketOf(lower)}`,
      odata`PartitionKey le ${view + bucketOf(upper)}`,
      query.after ? odata`RowKey gt ${lower}` : odata`RowKey ge ${lower}`,
      odata`RowKey lt ${upper}`,
      ...(query.type ? [odata`type eq ${query.type}`] : []),
      ...(query.status ? [odata`status eq ${query.status}`] : []),
      // Property names come from fieldProperty (letters, digits and _ only), never from input as such.
      ...[...equals, ...query.fields.map((f): [string, string] => [fieldProperty(f.field), f.value])].map(
        ([property, value]) => `${property} ${odata`eq ${value}`}`,
      ),
    ];
    const filter = conditions.join(' and ');
    const pages = table
      .listEntities<StoredEntry>({ queryOptions: { filter } })
      .byPage({ maxPageSize: query.pageSize ?? 1000 });
    try {
      for await (const page of pages)
        for (const e of page) {
          yield {
            rowKey: e.rowKey!,
            operationId: e.operationId,
            requestId: e.requestId,
            customerKey: e.customerKey,
            seq: e.seq,
            channel: e.channel,
            type: e.type,
            ...(e.code ? { code: e.code } : {}),
            ...(e.failedAt ? { failedAt: e.failedAt } : {}),
            item: {
              operationId: e.operationId,
              channel: e.channel,
              type: e.type as ListedOperation['type'],
              ...(e.customerAccount ? { customerAccount: e.customerAccount } : {}),
              ...(e.asyncCustomerAccount ? { asyncCustomerAccount: e.asyncCustomerAccount } : {}),
              operationTimestamp: e.at,
              status: e.status,
              changeDescription: e.changeDescription,
              ...(e.lastError ? { lastError: JSON.parse(e.lastError) as LastError } : {}),
            },
          };
        }
    } catch (error) {
      if (!hasStatus(error, 404)) throw error; // no table for that hour: nothing happened then
    }
  }

  /** Every hour (yyyymmddhh) that has an index table, oldest first. */
  async hours(): Promise<string[]> {
    return (await this.tables.listDynamic('Ops')).map((name) => name.slice(3)).filter((h) => HOUR.test(h));
  }

  /**
   * The hours that have an index table from `to` back to `from` (inclusive; ISO times or hours), newest
   * first. Lists one day of tables per request, so a page filled in the newest hours asks only for those.
   */
  async *hoursBetween(from: string, to: string): AsyncIterable<string> {
    const bound = (value: string) => (HOUR.test(value) ? value : hourOf(value));
    const lowest = bound(from);
    for (let upper = bound(to); upper >= lowest;) {
      const midnight = `${upper.slice(0, 8)}00`;
      const names = await this.tables.listDynamic('Ops', midnight > lowest ? midnight : lowest, upper);
      yield* names
        .map((name) => name.slice(3))
        .filter((h) => HOUR.test(h))
        .reverse();
      upper = hourBefore(midnight);
    }
  }

  /** Removes an operation's hour entries (both views). */
  async remove(hour: string, entry: IndexEntry): Promise<void> {
    const writer = this.tables.batcher(`Ops${hour}`);
    const bucket = bucketOf(entry.rowKey);
    await Promise.all(
      [allView, channelView(entry.channel)].map((view) =>
        writer.delete(view + bucket, entry.rowKey).catch((error: unknown) => {
          if (!hasStatus(error, 404)) throw error;
        }),
      ),
    );
  }

  async dropHour(hour: string): Promise<void> {
    this.createdHours.delete(hour);
    await this.tables.dropDynamic(`Ops${hour}`);
  }

  /** Hour tables are created on first write, once per process. */
  private async hourTable(hour: string, create: boolean): Promise<TableClient> {
    const table = this.tables.dynamic(`Ops${hour}`);
    if (create) {
      let created = this.createdHours.get(hour);
      if (!created) {
        created = table.createTable().catch((error: unknown) => {
          this.createdHours.delete(hour);
          throw error;
        });
        this.createdHours.set(hour, created);
      }
      await created;
    }
    return table;
  }
}

function entryOf(op: Operation): TableEntity & { rowKey: string } {
  return {
    partitionKey: '',
    rowKey: indexRowKey(op),
    operationId: op.operationId,
    requestId: op.requestId,
    customerKey: op.customerKey,
    seq: op.seq,
    channel: op.channel,
    type: op.type,
    at: op.operationTimestamp,
    customerAccount: op.customerAccount,
    asyncCustomerAccount: op.asyncCustomerAccount,
    status: op.status,
    changeDescription: op.changeDescription,
    code: op.lastError?.code,
    lastError: op.lastError && JSON.stringify(op.lastError),
    ...fieldProperties(op.changes),
  };
}
