/**
 * The development Dataverse's data: the rows of each table, one global version counter, and the change log that
 * change tracking answers from. Kept apart from HTTP so that tests and the snapshot file see the same state the
 * Web API serves, and so that every write goes through one place that stamps versions and records the change.
 *
 * The change log is compacted as it is written: a delta query only ever returns a row's current values once, in
 * the order of its latest change, so a table keeps its rows in a Map that each write re-inserts at the end (Map
 * order is change order) plus a tombstone per deleted id. That is all the history "what changed since version n"
 * needs, and it does not grow with the number of updates.
 */

export type ColumnValue = string | number | boolean | null;
export type Row = Record<string, ColumnValue>;

/**
 * A row's value of a column, null when the row does not have it. Own properties only, so a column named like an
 * Object.prototype member (constructor, toString) reads as the row's value or null, never as a function.
 */
export const columnOf = (row: Row, column: string): ColumnValue => (Object.hasOwn(row, column) ? row[column]! : null);

/**
 * Lower-case letters, digits and _, not starting with a digit, as Dataverse logical names (_x_value for lookups).
 * __proto__ would reach the prototype.
 */
export const isColumnName = (name: string): boolean => /^[a-z_][a-z0-9_]*$/.test(name) && name !== '__proto__';

/** The tables this server has, with their primary key columns, as in Dataverse. */
export const TABLES: Readonly<Record<string, string>> = { accounts: 'accountid', contacts: 'contactid' };

/** Columns the server owns: a body may carry them (a row read back and written again), but they are not taken. */
export const SERVER_COLUMNS = new Set(['versionnumber', 'createdon', 'modifiedon']);

class Table {
  /** Live rows by id, in change order (each write re-inserts its row at the end). */
  readonly rows = new Map<string, Row>();
  /** Deleted ids with the version of their deletion, in deletion order. */
  readonly deleted = new Map<string, number>();
  private sorted: string[] | undefined;

  constructor(readonly key: string) {}

  /** Ids in primary-key order, Dataverse's default order of a collection; cached until a row comes or goes. */
  sortedIds(): readonly string[] {
    return (this.sorted ??= [...this.rows.keys()].sort());
  }

  put(id: string, row: Row, isNew: boolean): void {
    this.rows.delete(id);
    this.rows.set(id, row);
    if (isNew) {
      this.deleted.delete(id);
      this.sorted = undefined;
    }
  }

  remove(id: string, version: number): void {
    this.rows.delete(id);
    this.deleted.delete(id);
    this.deleted.set(id, version);
    this.sorted = undefined;
  }
}

/** Dataverse dates are UTC to the second; dynamics-web-api turns exactly this form into a Date. */
const timestamp = (now: Date) => now.toISOString().replace(/\.\d{3}Z$/, 'Z');

export interface StoreSnapshot {
  format: 1;
  version: number;
  expiredThrough: number;
  tables: Record<string, { rows: Row[]; deleted: [string, number][] }>;
}

export class Store {
  private readonly tables = new Map<string, Table>();
  /** The last version handed out; every write takes the next one, across all tables (as versionnumber does). */
  private version = 0;
  /** Delta tokens at or below this version have expired (see expireDeltaTokens). */
  private expiredThrough = -1;
  /** Called after every change, so the snapshot file can be written. */
  onChange: () => void = () => {};

  constructor(snapshot?: StoreSnapshot) {
    for (const [name, key] of Object.entries(TABLES)) this.tables.set(name, new Table(key));
    if (snapshot) this.restore(snapshot);
  }

  has(table: string): boolean {
    return this.tables.has(table);
  }

  keyOf(table: string): string {
    return this.table(table).key;
  }

  get(table: string, id: string): Row | undefined {
    return this.table(table).rows.get(id);
  }

  /** Live rows in change order. */
  rowsInChangeOrder(table: string): IterableIterator<Row> {
    return this.table(table).rows.values();
  }

  /** Deleted ids with their deletion version, in deletion order. */
  deletions(table: string): IterableIterator<[string, number]> {
    return this.table(table).deleted.entries();
  }

  sortedIds(table: string): readonly string[] {
    return this.table(table).sortedIds();
  }

  currentVersion(): number {
    return this.version;
  }

  /** Inserts a row; the caller has checked that the id is free. */
  create(table: string, id: string, columns: Row, now = new Date()): Row {
    const state = this.table(table);
    const at = timestamp(now);
    const row: Row = { [state.key]: id, ...columns, createdon: at, modifiedon: at, versionnumber: ++this.version };
    state.put(id, row, true);
    this.onChange();
    return row;
  }

  /** Applies columns to an existing row; a write always moves the version on, even if no value changed. */
  update(table: string, id: string, columns: Row, now = new Date()): Row {
    const state = this.table(table);
    const existing = state.rows.get(id);
    if (!existing) throw new Error(`update of a missing row ${table}(${id})`);
    const row: Row = { ...existing, ...columns, modifiedon: timestamp(now), versionnumber: ++this.version };
    state.put(id, row, false);
    this.onChange();
    return row;
  }

  delete(table: string, id: string): void {
    this.table(table).remove(id, ++this.version);
    this.onChange();
  }

  /**
   * Every delta token issued so far expires. The counter moves on so that a token issued from now on is above
   * the line even if nothing is written in between.
   */
  expireDeltaTokens(): void {
    this.expiredThrough = this.version;
    this.version++;
    this.onChange();
  }

  deltaTokenState(since: number): 'valid' | 'expired' | 'unknown' {
    if (!Number.isSafeInteger(since) || since < 0 || since > this.version) return 'unknown';
    return since <= this.expiredThrough ? 'expired' : 'valid';
  }

  snapshot(): StoreSnapshot {
    const tables: StoreSnapshot['tables'] = {};
    for (const [name, state] of this.tables) {
      tables[name] = { rows: [...state.rows.values()], deleted: [...state.deleted.entries()] };
    }
    return { format: 1, version: this.version, expiredThrough: this.expiredThrough, tables };
  }

  private restore(snapshot: StoreSnapshot): void {
    if (snapshot.format !== 1 || !Number.isSafeInteger(snapshot.version)) {
      throw new Error('not a development Dataverse snapshot (format 1)');
    }
    this.version = snapshot.version;
    this.expiredThrough = snapshot.expiredThrough;
    for (const [name, saved] of Object.entries(snapshot.tables)) {
      const state = this.tables.get(name);
      if (!state) continue;
      // Sorted by version so that change order survives a file edited by hand.
      const rows = [...saved.rows].sort((a, b) => Number(a.versionnumber) - Number(b.versionnumber));
      for (const row of rows) {
        const id = row[state.key];
        if (typeof id !== 'string') throw new Error(`a row of ${name} has no ${state.key}`);
        state.put(id, row, true);
      }
      for (const [id, version] of [...saved.deleted].sort((a, b) => a[1] - b[1])) {
        if (!state.rows.has(id)) state.remove(id, version);
      }
      // The counter never hands out a version a row or deletion already has, whatever the file says.
      for (const row of rows) this.version = Math.max(this.version, Number(row.versionnumber) || 0);
      for (const [, version] of saved.deleted) this.version = Math.max(this.version, version);
    }
  }

  private table(name: string): Table {
    const state = this.tables.get(name);
    if (!state) throw new Error(`the development Dataverse has no table ${name}`);
    return state;
  }
}
