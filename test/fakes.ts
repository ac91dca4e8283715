import type { CustomerRecord, Operation, OperationHead } from '../shared/domain/operation';
import type { CustomerStore, EditKey, Store, Unapplied } from '../shared/domain/ports';
import { type Versioned, WriteConflict } from '../shared/domain/versioned';

/**
 * In-memory stand-ins for the ports, for unit tests of use cases: the same contract as the Table Storage
 * repositories (ETags, WriteConflict), none of the I/O.
 */
export class MemoryCustomerStore implements CustomerStore {
  private readonly rows = new Map<string, Versioned<unknown>>();
  private version = 0;
  /** Runs before every conditional write: a test makes one lose a race by changing the row here. */
  beforeWrite: (() => void) | undefined;

  private read<T>(key: string): Versioned<T> | undefined {
    const row = this.rows.get(key) as Versioned<T> | undefined;
    return row && structuredClone(row);
  }

  private write(key: string, value: unknown, etag: string | undefined): string {
    const current = this.rows.get(key);
    if (etag === undefined && current) throw new WriteConflict('exists');
    if (etag !== undefined && current?.etag !== etag) throw new WriteConflict('changed');
    const next = `W/"${++this.version}"`;
    this.rows.set(key, { value: structuredClone(value), etag: next });
    return next;
  }

  /** Writes every row or none, as an entity-group transaction does. */
  /** Returns the new ETags, in the order of the writes. */
  private transaction(writes: [key: string, value: unknown, etag: string | undefined][]): string[] {
    this.beforeWrite?.();
    const before = new Map(this.rows);
    try {
      return writes.map(([key, value, etag]) => this.write(key, value, etag));
    } catch (error) {
      this.rows.clear();
      for (const [key, row] of before) this.rows.set(key, row);
      throw error;
    }
  }

  /** Someone else changes an operation now (a new version): what a test uses to stage a race. */
  changeOperation(customerKey: string, seq: number, change: (op: Operation) => void): void {
    const key = MemoryCustomerStore.opKey(customerKey, seq);
    const row = this.rows.get(key) as Versioned<Operation>;
    const value = structuredClone(row.value);
    change(value);
    this.rows.set(key, { value, etag: `W/"${++this.version}"` });
  }

  private static recordKey = (customerKey: string) => `${customerKey}/record`;
  private static opKey = (customerKey: string, seq: number) => `${customerKey}/op/${seq}`;
  private static editKey = (customerKey: string, key: EditKey) => `${customerKey}/key/${key.channel}/${key.key}`;

  async getRecord(customerKey: string) {
    return this.read<CustomerRecord>(MemoryCustomerStore.recordKey(customerKey));
  }

  async *records() {
    for (const [key, row] of this.rows) if (key.endsWith('/record')) yield structuredClone(row.value as CustomerRecord);
  }

  async getOperation(customerKey: string, seq: number) {
    return this.read<Operation>(MemoryCustomerStore.opKey(customerKey, seq));
  }

  async getOperationHead(customerKey: string, seq: number): Promise<OperationHead | undefined> {
    return (await this.getOperation(customerKey, seq))?.value;
  }

  async readUnapplied(customerKey: string, limit: number) {
    const record = await this.getRecord(customerKey);
    if (!record) return { operations: [] };
    const operations: Versioned<Operation>[] = [];
    const last = Math.min(record.value.nextSeq - 1, record.value.appliedThrough + limit);
    for (let seq = record.value.appliedThrough + 1; seq <= last; seq++) {
      const op = await this.getOperation(customerKey, seq);
      if (op) operations.push(op);
    }
    return { record, operations };
  }

  async insertNew(record: CustomerRecord, ...operations: Operation[]): Promise<Unapplied> {
    const [recordEtag, ...etags] = this.transaction([
      [MemoryCustomerStore.recordKey(record.customerKey), record, undefined],
      ...operations.map((op): [string, unknown, undefined] => [
        MemoryCustomerStore.opKey(op.customerKey, op.seq),
        op,
        undefined,
      ]),
    ]);
    return {
      record: { value: structuredClone(record), etag: recordEtag! },
      operations: operations.map((op, i) => ({ value: structuredClone(op), etag: etags[i]! })),
    };
  }

  async append(record: Versioned<CustomerRecord>, operation: Operation, key?: EditKey): Promise<Unapplied> {
    const { customerKey } = record.value;
    const [recordEtag, opEtag] = this.transaction([
      [MemoryCustomerStore.recordKey(customerKey), record.value, record.etag],
      [MemoryCustomerStore.opKey(customerKey, operation.seq), operation, undefined],
      ...(key
        ? [
            [
              MemoryCustomerStore.editKey(customerKey, key),
              { seq: operation.seq, requestHash: key.requestHash },
              undefined,
            ] as [string, unknown, undefined],
          ]
        : []),
    ]);
    return {
      record: { value: structuredClone(record.value), etag: recordEtag! },
      operations: [{ value: structuredClone(operation), etag: opEtag! }],
    };
  }

  async editFor(customerKey: string, key: EditKey) {
    return this.read<{ seq: number; requestHash: string }>(MemoryCustomerStore.editKey(customerKey, key))?.value;
  }

  async commit(record: Versioned<CustomerRecord>, operations: Versioned<Operation>[]) {
    this.transaction([
      [MemoryCustomerStore.recordKey(record.value.customerKey), record.value, record.etag],
      ...operations.map((op): [string, unknown, string] => [
        MemoryCustomerStore.opKey(op.value.customerKey, op.value.seq),
        op.value,
        op.etag,
      ]),
    ]);
  }

  async updateOperation(operation: Versioned<Operation>) {
    this.beforeWrite?.();
    return this.write(
      MemoryCustomerStore.opKey(operation.value.customerKey, operation.value.seq),
      operation.value,
      operation.etag,
    );
  }

  async deleteOperation(operation: Versioned<Operation>) {
    const key = MemoryCustomerStore.opKey(operation.value.customerKey, operation.value.seq);
    if (this.rows.get(key)?.etag !== operation.etag) return false;
    return this.rows.delete(key);
  }
}

/**
 * A Store whose ports are the given fakes; any other port throws when a use case touches it, so a test
 * states exactly which storage a use case needs.
 */
export function memoryStore(ports: Partial<Store>): Store {
  return new Proxy(ports as Store, {
    get: (target, name: string) => {
      if (name in target) return target[name as keyof Store];
      throw new Error(`the use case used the ${name} port, which this test does not fake`);
    },
  });
}
