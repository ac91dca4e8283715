import { odata, type TableClient, type TableEntity } from '@azure/data-tables';

import type { Changes } from '../domain/changes';
import { type LastError, type Operation, type OperationSummary, SUMMARY_FIELDS, summaryOf } from '../domain/operation';
import type { IndexEntry, IndexPage, IndexPosition, IndexQuery, OperationIndex } from '../domain/ports';
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
 * `<bucket>` is the first 10 of the RowKey's 13 digits: one second (the failed index: the first 9, ten
 * seconds, as it is written rarely). Small partitions spread the writes (a partition serves a bounded rate on
 * Azure; Azurite scans the whole partition for every point write), and the entries of concurrent submits share
 * one and go in one transaction (WriteBatcher). Because the bucket is a prefix of the RowKey, (PartitionKey,
 * RowKey) order is RowKey order: a view is read with one range query over its buckets, newest first, and a
 * continuation RowKey also says which bucket to resume in. Entries written before the buckets were one second
 * long sit in ten-second buckets, which sort just before the one-second buckets they hold: a range's lower
 * bound (its newest end) is therefore the ten-second bucket, which covers both.
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
/**
 * Most hour tables one page reads. A sparse filter over a long window stops there and answers with what it
 * found and a position in the next hour, rather than querying every hour of 90 days at once.
 */
const HOUR_BUDGET = 48;

const indexRowKey = (op: Pick<OperationSummary, 'operationTimestamp' | 'operationId'>) =>
  `${invertedTime(op.operationTimestamp)}|${op.operationId}`;
/** The one-second bucket of a RowKey (or of an inverted-time bound). */
const bucketOf = (rowKey: string) => rowKey.slice(0, 10);
/** The ten-second bucket: the failed index's, and every view's before the buckets were one second long. */
const tenSecondBucketOf = (rowKey: string) => rowKey.slice(0, 9);
const allView = 'all|';
const channelView = (channel: string) => `ch|${channel}|`;
const FAILED_VIEW = 'failed|';

/** The hour (yyyymmddhh, UTC) of an ISO timestamp: its index table's suffix. */
const hourOf = (iso: string) => iso.slice(0, 13).replace(/[-T]/g, '');
const HOUR = /^\d{10}$/;
/** Milliseconds of an hour's start; NaN for text that is not a real hour. */
const hourStart = (hour: string) =>
  HOUR.test(hour)
    ? Date.parse(`${hour.slice(0, 4)}-${hour.slice(4, 6)}-${hour.slice(6, 8)}T${hour.slice(8, 10)}:00:00Z`)
    : NaN;
/** Whether the text is a real hour (2026-02-30 or hour 24 are not). */
const isHour = (hour: string) =>
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

/** An index entity as stored: the list item (its last error as JSON), whose entry it is, and field values. */
type StoredEntry = Omit<OperationSummary, 'lastError'> & {
  requestId: string;
  customerKey: string;
  seq: number;
  lastError?: string;
  /** Last error code (a filter). */
  code?: string;
  /** When the failure happened (failed index only). */
  failedAt?: string;
};

/**
 * A scan of one view: the query's filters, resuming strictly after a RowKey, so many entries per request; with
 * `firstMs`, the first request reads only that much time (see `scan`).
 */
type Scan = Omit<IndexQuery, 'failed'> & { after?: string; pageSize: number; firstMs?: number };

/** The milliseconds (inverted) a RowKey or bound starts with. */
const msOf = (key: string) => Number(key.slice(0, 13));

export class TableOperationIndex implements OperationIndex {
  /** Hour tables this process created (or is creating): concurrent first writes share one createTable. */
  private readonly createdHours = new Map<string, Promise<void>>();

  constructor(private readonly tables: TableSet) {}

  async put(op: Operation): Promise<void> {
    const hour = hourOf(op.operationTimestamp);
    await this.createHourTable(hour);
    const writer = this.tables.batcher(`Ops${hour}`);
    const entity = entityOf(op);
    const bucket = bucketOf(entity.rowKey);
    await Promise.all(
      [allView, channelView(op.channel)].map((view) => writer.upsert({ ...entity, partitionKey: view + bucket })),
    );
  }

  async update(op: Operation, previous?: LastError): Promise<void> {
    await Promise.all([
      this.put(op),
      op.status === 'Failed' ? this.putFailed(op) : undefined,
      op.status !== 'Failed' && previous ? this.removeFailed(op, previous.at) : undefined,
    ]);
  }

  async putFailed(op: Operation): Promise<void> {
    const entity = entityOf(op);
    await this.tables.batcher(TABLE_NAMES.failedOperations).upsert({
      ...entity,
      partitionKey: FAILED_VIEW + tenSecondBucketOf(entity.rowKey),
      code: op.lastError?.code ?? 'UNKNOWN',
      failedAt: op.lastError?.at,
    });
  }

  /** If the operation failed again meanwhile (a processor raced the resync), its new entry stays. */
  async removeFailed(
    op: Pick<OperationSummary, 'operationId' | 'operationTimestamp'>,
    failedAt: string | undefined,
  ): Promise<void> {
    const table = this.tables.get('failedOperations');
    const rowKey = indexRowKey(op);
    const partitionKey = FAILED_VIEW + tenSecondBucketOf(rowKey);
    try {
      const entry = await table.getEntity<{ failedAt?: string }>(partitionKey, rowKey);
      if (entry.failedAt !== failedAt) return;
      await table.deleteEntity(partitionKey, rowKey, { etag: entry.etag });
    } catch (error) {
      if (!hasStatus(error, 404, 412)) throw error;
    }
  }

  async page(query: IndexQuery, top: number, after?: IndexPosition): Promise<IndexPage | undefined> {
    const items: OperationSummary[] = [];
    if (query.failed) {
      if (after && after.hour !== '') return undefined;
      const last = await take(this.failed({ ...query, after: after?.rowKey || undefined, pageSize: top }), top, items);
      return { items, ...(last === undefined ? {} : { next: { hour: '', rowKey: last } }) };
    }
    const { from, to } = query;
    if (from === undefined || to === undefined) throw new Error('The hour tables are read within a time window.');
    // A position's hour must be a real hour inside the window (a forged one could be anything).
    if (after && !(isHour(after.hour) && after.hour >= hourOf(from) && after.hour <= hourOf(to))) return undefined;
    // A resumed page goes on from its position's hour (or the next older one, if retention dropped it).
    let visited = 0;
    for await (const hour of this.hoursBetween(from, after?.hour ?? to)) {
      if (++visited > HOUR_BUDGET) return { items, next: { hour, rowKey: '' } }; // that hour, from its start
      const resume = after?.hour === hour && after.rowKey ? after.rowKey : undefined;
      // A page resumed in the hour where the previous one filled reads about twice that one's time span first.
      const firstMs = resume && after?.spanMs !== undefined ? Math.max(1000, 2 * after.spanMs) : undefined;
      // Fetch as many entries per request as the page still needs items: every entry costs a read.
      const entries = this.hour(hour, { ...query, after: resume, pageSize: top - items.length, firstMs });
      const last = await take(entries, top, items);
      if (last !== undefined) {
        const spanMs = Math.min(3_600_000, Math.max(0, msOf(last) - msOf(resume ?? invertedTime(to))));
        return { items, next: { hour, rowKey: last, spanMs } };
      }
    }
    return { items };
  }

  async *failedEntries(): AsyncIterable<IndexEntry> {
    for await (const [, entry] of this.failed({ fields: [], pageSize: 1000 })) yield entry;
  }

  async hours(before?: string): Promise<string[]> {
    const hours = (await this.tables.listDynamic('Ops')).map((name) => name.slice(3)).filter((h) => HOUR.test(h));
    return before === undefined ? hours : hours.filter((h) => h < hourOf(before));
  }

  async *entriesOfHour(hour: string): AsyncIterable<IndexEntry> {
    for await (const [, entry] of this.hour(hour, { fields: [], pageSize: 1000 })) yield entry;
  }

  async remove(hour: string, entry: IndexEntry): Promise<void> {
    const writer = this.tables.batcher(`Ops${hour}`);
    // Not in its one-second bucket: an entry written before buckets were one second long.
    const removeFrom = async (view: string) => {
      for (const bucket of [bucketOf(entry.key), tenSecondBucketOf(entry.key)]) {
        try {
          return await writer.delete(view + bucket, entry.key);
        } catch (error) {
          if (!hasStatus(error, 404)) throw error;
        }
      }
    };
    await Promise.all([allView, channelView(entry.item.channel)].map(removeFrom));
  }

  async dropHour(hour: string): Promise<void> {
    this.createdHours.delete(hour);
    await this.tables.dropDynamic(`Ops${hour}`);
  }

  /** An hour's entries matching the scan, newest first (none when the hour has no table). */
  private async *hour(hour: string, scan: Scan): AsyncIterable<[rowKey: string, IndexEntry]> {
    const table = this.tables.dynamic(`Ops${hour}`);
    yield* this.scan(table, scan.channel === undefined ? allView : channelView(scan.channel), scan);
  }

  private async *failed(scan: Scan): AsyncIterable<[rowKey: string, IndexEntry]> {
    // The failed partition mixes channels, so there the channel is a filter rather than a partition.
    const equals: [string, string][] = scan.channel === undefined ? [] : [['channel', scan.channel]];
    yield* this.scan(this.tables.get('failedOperations'), FAILED_VIEW, scan, equals);
  }

  private async *scan(
    table: TableClient,
    view: string,
    scan: Scan,
    equals: [property: string, value: string][] = [],
  ): AsyncIterable<[rowKey: string, IndexEntry]> {
    // RowKeys are inverted times, newer is smaller: `to` (or the resume point) bounds from below, `from` from
    // above; the view's buckets between the two bounds are the partitions to read.
    const lower = scan.after ?? (scan.to ? invertedTime(scan.to) : '');
    const upper = scan.from ? `${invertedTime(scan.from)}|~` : '~';
    // Azurite sorts every entity a query matches before it returns the first page, so in a busy hour a deep page
    // costs the sort of the whole rest of the hour. With `firstMs`, a first request reads only that much time
    // from the lower bound (just its buckets on Azure) and a second one the rest, if the page needs more.
    const split = scan.firstMs && lower ? String(msOf(lower) + scan.firstMs).padStart(13, '0') : undefined;
    if (split && split < upper) {
      yield* this.range(table, view, scan, equals, { lower, after: scan.after !== undefined, upper: split });
      yield* this.range(table, view, scan, equals, { lower: split, after: false, upper });
    } else {
      yield* this.range(table, view, scan, equals, { lower, after: scan.after !== undefined, upper });
    }
  }

  /** The view's entries from `lower` (exclusive if `after`) to `upper` (exclusive) that match the scan's filters. */
  private async *range(
    table: TableClient,
    view: string,
    scan: Scan,
    equals: [property: string, value: string][],
    { lower, after, upper }: { lower: string; after: boolean; upper: string },
  ): AsyncIterable<[rowKey: string, IndexEntry]> {
    // Each condition is its own odata`` template with text before the value: the helper quotes and escapes a
    // string only when it follows other text (a template that starts with a value is left unquoted).
    const conditions = [
      odata`PartitionKey ge ${view + tenSecondBucketOf(lower)}`,
      odata`PartitionKey le ${view + bucketOf(upper)}`,
      after ? odata`RowKey gt ${lower}` : odata`RowKey ge ${lower}`,
      odata`RowKey lt ${upper}`,
      ...(scan.type ? [odata`type eq ${scan.type}`] : []),
      ...(scan.status ? [odata`status eq ${scan.status}`] : []),
      ...(scan.code ? [odata`code eq ${scan.code}`] : []),
      // Property names come from fieldProperty (letters, digits and _ only), never from input as such.
      ...[...equals, ...scan.fields.map((f): [string, string] => [fieldProperty(f.field), f.value])].map(
        ([property, value]) => `${property} ${odata`eq ${value}`}`,
      ),
    ];
    const pages = table
      .listEntities<StoredEntry>({ queryOptions: { filter: conditions.join(' and ') } })
      .byPage({ maxPageSize: scan.pageSize });
    try {
      for await (const page of pages) for (const e of page) yield [e.rowKey!, entryOf(e.rowKey!, e)];
    } catch (error) {
      if (!hasStatus(error, 404)) throw error; // no table for that hour: nothing happened then
    }
  }

  /**
   * The hours that have an index table from `to` back to `from` (inclusive; ISO times or hours), newest
   * first. Lists one day of tables per request, so a page filled in the newest hours asks only for those.
   */
  private async *hoursBetween(from: string, to: string): AsyncIterable<string> {
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

  /** Hour tables are created on first write, once per process. */
  private async createHourTable(hour: string): Promise<void> {
    let created = this.createdHours.get(hour);
    if (!created) {
      created = this.tables
        .dynamic(`Ops${hour}`)
        .createTable()
        .catch((error: unknown) => {
          this.createdHours.delete(hour);
          throw error;
        });
      this.createdHours.set(hour, created);
    }
    await created;
  }
}

/** Takes entries' items up to `top`; the RowKey of the one that filled the page. */
async function take(entries: AsyncIterable<[string, IndexEntry]>, top: number, items: OperationSummary[]) {
  for await (const [rowKey, entry] of entries) {
    items.push(entry.item);
    if (items.length === top) return rowKey;
  }
  return undefined;
}

function entityOf(op: Operation): TableEntity<StoredEntry> & { rowKey: string } {
  const item = summaryOf(op);
  return {
    partitionKey: '',
    rowKey: indexRowKey(op),
    requestId: op.requestId,
    customerKey: op.customerKey,
    seq: op.seq,
    ...item,
    lastError: item.lastError && JSON.stringify(item.lastError),
    code: op.lastError?.code,
    ...fieldProperties(op.changes),
  };
}

function entryOf(key: string, e: StoredEntry & { at?: string }): IndexEntry {
  const item: Record<string, unknown> = {};
  for (const field of SUMMARY_FIELDS) if (e[field] !== undefined && e[field] !== null) item[field] = e[field];
  if (e.lastError) item.lastError = JSON.parse(e.lastError) as LastError;
  // Entries written before the summary schema named the entity's properties kept the timestamp as `at`.
  item.operationTimestamp ??= e.at;
  return {
    key,
    requestId: e.requestId,
    customerKey: e.customerKey,
    seq: e.seq,
    ...(e.failedAt ? { failedAt: e.failedAt } : {}),
    item: item as OperationSummary,
  };
}
