import type { AttributeChange, AttributeValue } from './changes';
import type { CrmTable, Snapshot, TableMapping } from './crm-mapping';

/** The sync error kinds of API.md's *Coupled data synchronization errors*. */
export const SYNC_ERROR_KINDS = ['ModifiedInBoth', 'DeletedInCrm', 'DeletedInHq', 'MultipleMatches', 'Failed'] as const;
export type SyncErrorKind = (typeof SYNC_ERROR_KINDS)[number];

export const SYNC_ACTIONS = ['Synchronize', 'Retry', 'RemoveCoupling', 'Restore', 'Delete'] as const;
export type SyncAction = (typeof SYNC_ACTIONS)[number];

/** The repair actions that fit each kind (API.md's table). */
export const ACTIONS_FOR: Record<SyncErrorKind, SyncAction[]> = {
  ModifiedInBoth: ['Synchronize', 'Retry', 'RemoveCoupling'],
  DeletedInCrm: ['Restore', 'Delete', 'RemoveCoupling'],
  DeletedInHq: ['Restore', 'Delete', 'RemoveCoupling'],
  MultipleMatches: ['Retry', 'RemoveCoupling'],
  Failed: ['Retry', 'RemoveCoupling'],
};

export interface Difference {
  field: string;
  crmField: string;
  hqValue: AttributeValue;
  crmValue: AttributeValue;
}

export interface SyncError {
  kind: SyncErrorKind;
  message: string;
  failedOn: string;
  hqExists: boolean;
  crmExists: boolean;
  differences?: Difference[];
  /** The row the error is about when the record is not coupled with it (the first of several matches). */
  crmId?: string;
  /** The versions the error was recorded against (of the side that still exists, for a deletion). */
  seen?: { hqVersion?: number; crmVersion?: string };
}

/** The version *Synchronize* keeps: HQ's, written to the CRM, or the CRM's, submitted to HQ. */
export type SyncSide = 'hq' | 'crm';

/** A repair action an operator asks for on one record (API.md *Coupled data synchronization errors*). */
export type ActionRequest =
  | { action: 'Retry' | 'Restore' | 'Delete' }
  /** `failedOn`: the error the operator chose on; a newer one is not settled with that choice. */
  | { action: 'Synchronize'; use: SyncSide; failedOn?: string };

/**
 * The operator action that is settling the record's error (`done` false: it claimed the record before touching
 * either app) or settled the last one (`done`). A claim keeps a second action and the sync job off the record
 * while it works; a done action answers a repeat of the same request as the first time (idempotent).
 */
export interface SyncActionTaken {
  action: ActionRequest['action'];
  use?: SyncSide;
  by?: string;
  at: string;
  /** The error it settles (its `failedOn`). */
  failedOn: string;
  done: boolean;
  operationId?: string;
}

/** How long a claim holds: an action that died halfway leaves the record to others after this. */
export const ACTION_CLAIM_MS = 120_000;

export const isSettling = (record: Pick<SyncRecord, 'action'> | undefined, now: Date) =>
  Boolean(record?.action && !record.action.done && Date.parse(record.action.at) + ACTION_CLAIM_MS > now.getTime());

/** Whether a request is the one an action carried out (a repeat); with `failedOn`, for the same error too. */
export const sameRequest = (taken: SyncActionTaken, request: ActionRequest) =>
  taken.action === request.action &&
  taken.use === ('use' in request ? request.use : undefined) &&
  (!('failedOn' in request) || request.failedOn === undefined || request.failedOn === taken.failedOn);

export type SyncLogDirection = 'ToCrm' | 'FromCrm';
export type SyncResult =
  'Inserted' | 'Modified' | 'Deleted' | 'Unchanged' | 'Coupled' | 'Uncoupled' | 'Conflict' | 'Failed';

/** One line of a record's synchronization log (API: GET /api/customers/{account}/sync-log). */
export interface SyncLogEntry {
  at: string;
  job?: string;
  /** The run's start time: with `job`, which run wrote the line. */
  run?: string;
  by?: string;
  direction: SyncLogDirection;
  result: SyncResult;
  detail: string;
  fields?: AttributeChange[];
}

/**
 * Everything the sync knows of one HQ customer, stored by its customer key (DESIGN.md §8): the coupled row,
 * the values both sides agreed on at the last synchronization (`base`, what "changed since" is measured
 * against), the CRM row version written or read last, the current sync error and how often it repeated.
 * A record whose coupling an operator removed stays, `decoupled`, so that automatic matching leaves the pair
 * alone.
 */
export interface SyncRecord {
  customerKey: string;
  customerAccount?: string;
  asyncCustomerAccount?: string;
  crmTable: CrmTable;
  /** The coupled CRM row (or, after Remove coupling, the row it was coupled with). */
  crmId?: string;
  coupledAt?: string;
  /** Remove coupling: not synchronized, and not coupled again automatically. */
  decoupled?: boolean;
  base: Snapshot;
  /** The CRM row's versionnumber as last written or read: a delta row with this version is our own write. */
  crmVersion?: string;
  hqVersion?: number;
  lastSyncedAt?: string;
  lastSyncResult?: 'Success' | 'Failure';
  /** An HQ operation submitted from a CRM change and not yet applied: the record waits for it. */
  awaiting?: string;
  error?: SyncError;
  /** The operator action settling or last settled the error. */
  action?: SyncActionTaken;
  /** How many runs in a row found the same error; two make the record `skipped`. */
  repeats: number;
  skipped: boolean;
}

export const isCoupled = (r: SyncRecord | undefined): r is SyncRecord & { crmId: string } =>
  Boolean(r?.crmId && !r.decoupled);

/** Whether two errors are the same one (a repeat), not merely of the same kind. */
export const sameError = (a: SyncError | undefined, b: SyncError) =>
  a !== undefined &&
  a.kind === b.kind &&
  a.message === b.message &&
  JSON.stringify(a.differences ?? []) === JSON.stringify(b.differences ?? []);

export type ConflictPolicy = 'None' | 'SendToCrm' | 'GetFromCrm';
export type DeletionPolicy = 'None' | 'Restore' | 'RemoveCoupling' | 'Delete';

/** What synchronizing a coupled pair calls for, decided from the values alone. */
export type Decision =
  | { kind: 'write'; toCrm: AttributeChange[]; toHq: AttributeChange[]; base: Snapshot; resolved?: ConflictPolicy }
  | { kind: 'conflict'; differences: Difference[] };

/**
 * Compares both sides with the values they agreed on at the last synchronization (DESIGN.md §8).
 * A side "changed" when any of its bidirectional fields differs from `base` (a field missing from `base` is
 * unknown, so it counts as changed on both sides). For each field whose values differ: a `ToCrm` field is
 * written to the CRM and a `FromCrm` field to HQ; a bidirectional field goes from the side that changed to
 * the one that did not, and if both changed it is a conflict listing every differing bidirectional field
 * (unless the conflict policy picks a side). Nothing differs: the versions move on silently.
 */
export function decide(
  mapping: TableMapping,
  base: Snapshot,
  hq: Snapshot,
  crm: Snapshot,
  policy: ConflictPolicy,
): Decision {
  const shared = mapping.fields.filter((f) => f.direction === 'Bidirectional');
  const changedIn = (side: Snapshot) => shared.some((f) => !(f.field in base) || side[f.field] !== base[f.field]);
  const hqChanged = changedIn(hq);
  const crmChanged = changedIn(crm);
  const differing = mapping.fields.filter((f) => hq[f.field] !== crm[f.field]);
  const bidirectional = differing.filter((f) => f.direction === 'Bidirectional');

  let winner: 'hq' | 'crm' | undefined = hqChanged && !crmChanged ? 'hq' : !hqChanged && crmChanged ? 'crm' : undefined;
  let resolved: ConflictPolicy | undefined;
  if (bidirectional.length > 0 && !winner) {
    if (policy === 'None') {
      return {
        kind: 'conflict',
        differences: bidirectional.map((f) => ({
          field: f.field,
          crmField: f.column,
          hqValue: hq[f.field]!,
          crmValue: crm[f.field]!,
        })),
      };
    }
    winner = policy === 'SendToCrm' ? 'hq' : 'crm';
    resolved = policy;
  }

  const toCrm: AttributeChange[] = [];
  const toHq: AttributeChange[] = [];
  const next: Snapshot = { ...hq };
  for (const f of differing) {
    const hqWins = f.direction === 'ToCrm' || (f.direction === 'Bidirectional' && winner === 'hq');
    if (hqWins) toCrm.push({ name: f.field, oldValue: crm[f.field]!, newValue: hq[f.field]! });
    else {
      toHq.push({ name: f.field, oldValue: hq[f.field]!, newValue: crm[f.field]! });
      next[f.field] = crm[f.field]!;
    }
  }
  return { kind: 'write', toCrm, toHq, base: next, ...(resolved ? { resolved } : {}) };
}

/** The values both sides already agree on: the base of a pair just coupled, so any difference is a conflict. */
export function agreed(hq: Snapshot, crm: Snapshot): Snapshot {
  return Object.fromEntries(Object.entries(hq).filter(([field, value]) => crm[field] === value));
}
