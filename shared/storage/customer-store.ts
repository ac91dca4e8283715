import { createHash } from 'node:crypto';

import { odata, type TableClient, type TableEntity } from '@azure/data-tables';

import type { AttributeChange, Changes } from '../domain/changes';
import type { Customer } from '../domain/customer';
import {
  type CustomerRecord,
  type HistoryEntry,
  type LastError,
  type Operation,
  type OperationHead,
  operationIdOf,
} from '../domain/operation';
import type { CustomerStore, EditKey, Unapplied } from '../domain/ports';
import type { Versioned } from '../domain/versioned';
import { conditionally, getOrUndefined, hasStatus, packJson, unpackJson } from './tables';
import { type Action, submitTransaction } from './transaction';

/**
 * Table `Customers` — one partition per customer (PartitionKey = its customer key, which is its async
 * customer account):
 *
 *   RowKey `customer`        the HQ customer master record and the partition's bookkeeping (CustomerRecord)
 *   RowKey `op-0000000001`   its operations in submission order (Operation)
 *   RowKey `key-<hash>`      an edit's Idempotency-Key → the operation it was accepted as
 *
 * Keeping a customer's record and operations in one partition is what makes processing exact: accepting an
 * operation (bump nextSeq + insert operation) and applying operations (update record + operations) are each
 * one entity-group transaction guarded by the record's ETag, so a crash or a concurrent processor can never
 * leave the customer and its audit trail disagreeing. Queries served: point reads only (the record names the
 * sequence numbers of its unapplied operations).
 */
const RECORD_ROW = 'customer';
/** An operation's RowKey: its sequence number, zero-padded so that RowKey order is submission order. */
export const seqRowKey = (seq: number) => `op-${String(seq).padStart(10, '0')}`;

/** Keys live in the customer's partition (row `key-<hash>`), so they commit with the operation they accept. */
const editKeyRow = ({ channel, key }: EditKey) =>
  `key-${createHash('sha256').update(`${channel}\n${key}`).digest('base64url')}`;

export class TableCustomerStore implements CustomerStore {
  constructor(private readonly table: TableClient) {}

  async getRecord(customerKey: string): Promise<Versioned<CustomerRecord> | undefined> {
    const entity = await getOrUndefined(this.table, customerKey, RECORD_ROW);
    return entity && { value: toRecord(entity), etag: entity.etag };
  }

  async *records(): AsyncIterable<CustomerRecord> {
    const filter = odata`RowKey eq ${RECORD_ROW}`;
    for await (const entity of this.table.listEntities<Entity>({ queryOptions: { filter } })) yield toRecord(entity);
  }

  async getOperation(customerKey: string, seq: number): Promise<Versioned<Operation> | undefined> {
    const entity = await getOrUndefined(this.table, customerKey, seqRowKey(seq));
    return entity && { value: toOperation(entity), etag: entity.etag };
  }

  /** A point read that leaves the operation's bulk (grid, history, submitted values) in storage. */
  async getOperationHead(customerKey: string, seq: number): Promise<OperationHead | undefined> {
    const entity = await getOrUndefined(this.table, customerKey, seqRowKey(seq), HEAD_PROPERTIES);
    return entity && toOperation(entity);
  }

  /**
   * The record and the operations after `appliedThrough` (at most `limit`), in submission order. Point reads
   * rather than a query: the record says exactly which rows to read, and a point read stays fast however
   * large the table grows (Azurite, unlike Azure, answers every query by scanning the whole table).
   */
  async readUnapplied(customerKey: string, limit: number): Promise<Partial<Unapplied> & Pick<Unapplied, 'operations'>> {
    const record = await this.getRecord(customerKey);
    if (!record) return { operations: [] };
    const first = record.value.appliedThrough + 1;
    const last = Math.min(record.value.nextSeq - 1, record.value.appliedThrough + limit);
    const reads = [];
    for (let seq = first; seq <= last; seq++) reads.push(this.getOperation(customerKey, seq));
    const operations = (await Promise.all(reads)).filter((op): op is Versioned<Operation> => op !== undefined);
    return { record, operations };
  }

  /** A new customer with its create operation (and, when importing history, the operations after it). */
  async insertNew(record: CustomerRecord, ...operations: Operation[]): Promise<Unapplied> {
    const { subResponses } = await conditionally(() =>
      submitTransaction(this.table, [
        ['create', fromRecord(record)],
        ...operations.map((op): Action => ['create', fromOperation(op)]),
      ]),
    );
    const etags = subResponses.map((r) => etagOf(r.etag));
    return {
      record: { value: record, etag: etags[0]! },
      operations: operations.map((value, i) => ({ value, etag: etags[i + 1]! })),
    };
  }

  /**
   * The record (with its new nextSeq) is replaced under the ETag it was read with. With an idempotency key,
   * the key's entity goes in the same transaction: a second request with the key conflicts and finds the first
   * one's answer with `editFor`, so an edit is accepted once per key, even when two retries race.
   */
  async append(record: Versioned<CustomerRecord>, operation: Operation, idempotency?: EditKey): Promise<Unapplied> {
    const actions: Action[] = [
      ['update', fromRecord(record.value), 'Replace', { etag: record.etag }],
      ['create', fromOperation(operation)],
    ];
    if (idempotency) {
      actions.push([
        'create',
        {
          partitionKey: record.value.customerKey,
          rowKey: editKeyRow(idempotency),
          requestHash: idempotency.requestHash,
          seq: operation.seq,
        },
      ]);
    }
    const { subResponses } = await conditionally(() => submitTransaction(this.table, actions));
    return {
      record: { value: record.value, etag: etagOf(subResponses[0]?.etag) },
      operations: [{ value: operation, etag: etagOf(subResponses[1]?.etag) }],
    };
  }

  /** The edit accepted earlier under this idempotency key, if any: its sequence number and request hash. */
  async editFor(customerKey: string, key: EditKey): Promise<{ seq: number; requestHash: string } | undefined> {
    const entity = await getOrUndefined<{ seq: number; requestHash: string }>(this.table, customerKey, editKeyRow(key));
    return entity && { seq: entity.seq, requestHash: entity.requestHash };
  }

  /**
   * Each operation is written with its own ETag, so an operator's edit that lands in between fails the commit.
   */
  async commit(record: Versioned<CustomerRecord>, operations: Versioned<Operation>[]): Promise<void> {
    const actions: Action[] = [['update', fromRecord(record.value), 'Replace', { etag: record.etag }]];
    for (const op of operations) actions.push(['update', fromOperation(op.value), 'Replace', { etag: op.etag }]);
    await conditionally(() => submitTransaction(this.table, actions));
  }

  async updateOperation(operation: Versioned<Operation>): Promise<string> {
    const result = await conditionally(() =>
      this.table.updateEntity(fromOperation(operation.value), 'Replace', { etag: operation.etag }),
    );
    return result.etag ?? '';
  }

  async deleteOperation(operation: Versioned<Operation>): Promise<boolean> {
    try {
      await this.table.deleteEntity(operation.value.customerKey, seqRowKey(operation.value.seq), {
        etag: operation.etag,
      });
      return true;
    } catch (error) {
      if (hasStatus(error, 404, 412)) return false;
      throw error;
    }
  }
}

/** A sub-response's ETag: the processor commits under it. */
function etagOf(etag: string | undefined): string {
  if (!etag) throw new Error('A transaction answer lacks the ETag of an entity it wrote.');
  return etag;
}

/** What a head read selects: every property but the bulk ones (`changes` is JSON split over up to 18 chunks). */
const HEAD_PROPERTIES = [
  'PartitionKey',
  'RowKey',
  'seq',
  'requestId',
  'channel',
  'type',
  'asyncCustomerAccount',
  'customerAccount',
  'operationTimestamp',
  'status',
  'changeDescription',
  'attempts',
  'nextAttemptAt',
  'waitingOn',
  'appliedAt',
  'lastError',
  'changes',
  ...Array.from({ length: 17 }, (_, i) => `changes_${i + 1}`),
];

/** An entity as the SDK returns it from reads and queries. */
type Entity = Record<string, unknown> & { partitionKey?: string; rowKey?: string };

function fromRecord(r: CustomerRecord): TableEntity {
  return {
    partitionKey: r.customerKey,
    rowKey: RECORD_ROW,
    asyncCustomerAccount: r.asyncCustomerAccount,
    customerAccount: r.customerAccount,
    version: r.version,
    nextSeq: r.nextSeq,
    appliedThrough: r.appliedThrough,
    updatedAt: r.updatedAt,
    deleted: r.deleted,
    deletedAt: r.deletedAt,
    ...(r.customer ? packJson('customer', r.customer) : {}),
    ...(r.deletedCustomer ? packJson('deletedCustomer', r.deletedCustomer) : {}),
  };
}

function toRecord(e: Entity): CustomerRecord {
  return {
    customerKey: e.partitionKey!,
    asyncCustomerAccount: e.asyncCustomerAccount as string | undefined,
    customerAccount: e.customerAccount as string | undefined,
    customer: unpackJson<Customer>(e, 'customer'),
    ...(e.deleted === true
      ? { deleted: true, deletedAt: e.deletedAt as string, deletedCustomer: unpackJson<Customer>(e, 'deletedCustomer') }
      : {}),
    version: e.version as number,
    nextSeq: e.nextSeq as number,
    appliedThrough: e.appliedThrough as number,
    updatedAt: e.updatedAt as string | undefined,
  };
}

function fromOperation(op: Operation): TableEntity {
  return {
    partitionKey: op.customerKey,
    rowKey: seqRowKey(op.seq),
    seq: op.seq,
    requestId: op.requestId,
    channel: op.channel,
    type: op.type,
    asyncCustomerAccount: op.asyncCustomerAccount,
    customerAccount: op.customerAccount,
    operationTimestamp: op.operationTimestamp,
    status: op.status,
    changeDescription: op.changeDescription,
    attempts: op.attempts,
    nextAttemptAt: op.nextAttemptAt,
    waitingOn: op.waitingOn,
    appliedAt: op.appliedAt,
    ...(op.lastError ? packJson('lastError', op.lastError) : {}),
    ...packJson('changes', op.changes),
    ...(op.submitted ? packJson('submitted', op.submitted) : {}),
    // Stored under its earlier name (also the API's), so operations written before read as they were.
    ...packJson('attributes', op.grid),
    ...packJson('history', op.history),
  };
}

function toOperation(e: Entity): Operation {
  const seq = e.seq as number;
  return {
    operationId: operationIdOf(e.partitionKey!, seq),
    customerKey: e.partitionKey!,
    seq,
    requestId: e.requestId as string,
    channel: e.channel as string,
    type: e.type as Operation['type'],
    asyncCustomerAccount: e.asyncCustomerAccount as string | undefined,
    customerAccount: e.customerAccount as string | undefined,
    operationTimestamp: e.operationTimestamp as string,
    status: e.status as Operation['status'],
    changeDescription: e.changeDescription as string,
    changes: unpackJson<Changes>(e, 'changes') ?? {},
    submitted: unpackJson<Changes>(e, 'submitted'),
    grid: unpackJson<AttributeChange[]>(e, 'attributes') ?? [],
    lastError: unpackJson<LastError>(e, 'lastError'),
    attempts: e.attempts as number,
    nextAttemptAt: e.nextAttemptAt as string | undefined,
    waitingOn: e.waitingOn as string | undefined,
    appliedAt: e.appliedAt as string | undefined,
    history: unpackJson<HistoryEntry[]>(e, 'history') ?? [],
  };
}
