import type { AttributeChange, Changes } from './changes';
import type { Customer } from './customer';

export const OPERATION_STATUSES = ['Pending', 'Processing', 'Synced', 'Failed'] as const;
export type OperationStatus = (typeof OPERATION_STATUSES)[number];
export const OPERATION_TYPES = ['Create', 'Update'] as const;
export type OperationType = (typeof OPERATION_TYPES)[number];

export interface HistoryEntry {
  at: string;
  status: OperationStatus;
  detail: string;
  by?: string;
  /** An operator's edit: each attribute's value before and after. */
  edits?: AttributeChange[];
}

export interface LastError {
  code: string;
  message: string;
  at: string;
}

/** One create or edit submitted by a channel. Lives in its customer's partition, ordered by `seq`. */
export interface Operation {
  operationId: string;
  /** Unique per submit request: tells a retried write that landed apart from someone else's. */
  requestId: string;
  customerKey: string;
  seq: number;
  channel: string;
  type: OperationType;
  asyncCustomerAccount?: string;
  customerAccount?: string;
  operationTimestamp: string;
  status: OperationStatus;
  changeDescription: string;
  /** What the channel asked for (or the operator repaired it to), as attribute path → new value. */
  changes: Changes;
  /** What the channel submitted, kept from the first operator edit on. */
  submitted?: Changes;
  /** Old and new value of every touched attribute; old values are filled in when the operation is applied. */
  attributes: AttributeChange[];
  lastError?: LastError;
  attempts: number;
  /** When a transient failure is retried automatically. */
  nextAttemptAt?: string;
  /** The operation this one waits for (an earlier operation of the same customer that has not been applied). */
  waitingOn?: string;
  /** When the operation was applied to HQ; also the channel feed's ordering key. */
  appliedAt?: string;
  history: HistoryEntry[];
}

/** What a listing shows of an operation (API.md, *OperationSummary*). */
export type ListedOperation = Pick<
  Operation,
  | 'operationId'
  | 'channel'
  | 'type'
  | 'customerAccount'
  | 'asyncCustomerAccount'
  | 'operationTimestamp'
  | 'status'
  | 'changeDescription'
  | 'lastError'
>;

/** An operation without its bulk (attribute grid, history, submitted values): what listings show and filter. */
export type OperationSummary = Omit<Operation, 'attributes' | 'history' | 'submitted'>;

/**
 * The HQ customer master record plus the per-customer bookkeeping that must change atomically with it:
 * `nextSeq` numbers new operations, `appliedThrough` is the last operation applied (operations apply strictly
 * in order).
 */
export interface CustomerRecord {
  customerKey: string;
  asyncCustomerAccount?: string;
  customerAccount?: string;
  customer?: Customer;
  version: number;
  nextSeq: number;
  appliedThrough: number;
  updatedAt?: string;
}

const SEQ_WIDTH = 10;
export const operationIdOf = (customerKey: string, seq: number) => `${customerKey}-${seq}`;

/**
 * Operation ids are self-locating (customer key + sequence number), so reading one is a point query
 * with no index entity to keep in step.
 */
export function parseOperationId(operationId: string): { customerKey: string; seq: number } | undefined {
  const match = /^([A-Z][A-Z0-9-]{2,62})-(\d{1,10})$/.exec(operationId);
  if (!match) return undefined;
  const seq = Number(match[2]);
  return seq >= 1 ? { customerKey: match[1]!, seq } : undefined;
}

export const seqRowKey = (seq: number) => `op-${String(seq).padStart(SEQ_WIDTH, '0')}`;
