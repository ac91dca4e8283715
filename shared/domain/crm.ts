import type { CrmTable } from './crm-mapping';

/**
 * The CRM as the coupling use cases see it (a port): Dataverse rows by table, with their version, change
 * tracking, and conditional writes. shared/crm implements it over the Dataverse Web API; a write that loses a
 * race throws WriteConflict (./versioned.ts), like storage does.
 */
export interface CrmRow {
  id: string;
  /** The row's versionnumber: its ETag is W/"<version>". */
  version: string;
  columns: Record<string, unknown>;
}

export interface CrmChanges {
  /** Rows created or changed since the delta link (every row when `full`). */
  rows: CrmRow[];
  /** Ids of rows deleted since the delta link. */
  deleted: string[];
  /** Where the next read of changes starts. */
  deltaLink: string;
  /** A full read: there was no delta link yet, or it had expired; `deleted` is then empty. */
  full: boolean;
}

export interface Crm {
  /** Changes since the delta link; without one (or once it expired), every row. */
  changes(table: CrmTable, deltaLink?: string): Promise<CrmChanges>;
  get(table: CrmTable, id: string): Promise<CrmRow | undefined>;
  /** Rows whose columns equal all these values; at most `top`. */
  find(table: CrmTable, values: Record<string, string>, top: number): Promise<CrmRow[]>;
  /** Creates a row with this id; WriteConflict `exists` if a row has it. */
  create(table: CrmTable, id: string, columns: Record<string, unknown>): Promise<CrmRow>;
  /** Updates the row unless it changed since `version` or is gone (WriteConflict `changed`). */
  update(table: CrmTable, id: string, version: string, columns: Record<string, unknown>): Promise<CrmRow>;
  /** Deletes the row unless it changed since `version` (WriteConflict); a row already gone is fine. */
  remove(table: CrmTable, id: string, version?: string): Promise<void>;
}

/** The CRM refused a request for a reason retrying does not change (a value it does not accept, ...). */
export class CrmRefused extends Error {
  constructor(
    message: string,
    /** The CRM's own error code, e.g. Dataverse's `0x80044352`. */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'CrmRefused';
  }
}

/** The run's time budget is spent: the run stops here and resumes from its cursors next time. */
export class BudgetSpent extends Error {
  constructor() {
    super('The run spent its time budget.');
    this.name = 'BudgetSpent';
  }
}
