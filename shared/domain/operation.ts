import { z } from 'zod';

import type { AttributeChange, Changes } from './changes';
import type { Customer } from './customer';

export const OPERATION_STATUSES = ['Pending', 'Processing', 'Synced', 'Failed'] as const;
export type OperationStatus = (typeof OPERATION_STATUSES)[number];
/**
 * A Create makes a customer (as the customer's first operation, or later as a restore of a deleted one), an
 * Update edits it, a Delete removes it from HQ.
 */
export const OPERATION_TYPES = ['Create', 'Update', 'Delete'] as const;
export type OperationType = (typeof OPERATION_TYPES)[number];

/** A channel's id as it appears in routes, tokens and filters. */
export const channelIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be 1–64 letters, digits, _ or -, such as web or pos-042');

const lastErrorSchema = z.object({ code: z.string(), message: z.string(), at: z.string() });
/** The most recent failure of an operation (or, while it waits, why it waits). */
export type LastError = z.infer<typeof lastErrorSchema>;

/**
 * What a listing shows of an operation (the API's OperationSummary). The one definition behind the list and
 * failure views, the OpenAPI document, the operation index entity and the CSV export (whose columns follow
 * this order).
 */
export const operationSummarySchema = z.object({
  operationId: z.string(),
  channel: z.string(),
  type: z.enum(OPERATION_TYPES),
  status: z.enum(OPERATION_STATUSES),
  operationTimestamp: z.string(),
  customerAccount: z.string().optional(),
  asyncCustomerAccount: z.string().optional(),
  changeDescription: z.string(),
  lastError: lastErrorSchema.optional(),
});
export type OperationSummary = z.infer<typeof operationSummarySchema>;
export const SUMMARY_FIELDS = Object.keys(operationSummarySchema.shape) as (keyof OperationSummary)[];

/** The summary of an operation (or of anything that carries its fields), without absent fields. */
export function summaryOf(op: OperationSummary): OperationSummary {
  const summary: Record<string, unknown> = {};
  for (const field of SUMMARY_FIELDS) if (op[field] !== undefined) summary[field] = op[field];
  return summary as OperationSummary;
}

export interface HistoryEntry {
  at: string;
  status: OperationStatus;
  detail: string;
  by?: string;
  /** An operator's edit: each attribute's value before and after. */
  edits?: AttributeChange[];
}

/**
 * One create, edit or deletion submitted by a channel (an operator's deletion: channel `hq`). Lives in its
 * customer's partition, ordered by `seq`; its status changes only through shared/domain/lifecycle.ts.
 */
export interface Operation extends OperationSummary {
  /** Unique per submit request: tells a retried write that landed apart from someone else's. */
  requestId: string;
  customerKey: string;
  seq: number;
  /** What the channel asked for (or the operator repaired it to), as attribute path → new value. */
  changes: Changes;
  /** What the channel submitted, kept from the first operator edit on. */
  submitted?: Changes;
  /** The attribute grid: old and new value of every touched attribute; old values are filled in when applied. */
  grid: AttributeChange[];
  attempts: number;
  /** When a transient failure is retried automatically. */
  nextAttemptAt?: string;
  /** The operation this one waits for (an earlier operation of the same customer that has not been applied). */
  waitingOn?: string;
  /** When the operation was applied to HQ; also the channel feed's ordering key. */
  appliedAt?: string;
  history: HistoryEntry[];
}

/** An operation without its bulk (attribute grid, history, submitted values): what filters and checks read. */
export type OperationHead = Omit<Operation, 'grid' | 'history' | 'submitted'>;

/**
 * The HQ customer master record plus the per-customer bookkeeping that must change atomically with it:
 * `nextSeq` numbers new operations, `appliedThrough` is the last operation settled (operations apply strictly
 * in order; settled means applied, or refused for good because the customer was deleted or, for a restore,
 * exists — see `isFinal` in lifecycle.ts).
 */
export interface CustomerRecord {
  customerKey: string;
  asyncCustomerAccount?: string;
  customerAccount?: string;
  /** The customer as HQ has it: absent until the create is applied, and while the customer is deleted. */
  customer?: Customer;
  /**
   * Set while the customer is deleted in HQ. The record stays, with its accounts and operations, so that the
   * deletion is audited, later operations of the customer are refused in order, and a restore brings the
   * customer back under the same customer account.
   */
  deleted?: true;
  deletedAt?: string;
  /** The customer as it was when deleted: whom a feed entry written again after a crash names. */
  deletedCustomer?: Customer;
  version: number;
  nextSeq: number;
  appliedThrough: number;
  updatedAt?: string;
}

/**
 * The channel of operations an operator submits through the operator API (a deletion): HQ itself. The
 * operator is the operation's `by`.
 */
export const HQ_CHANNEL = 'hq';

/** The channel of operations the CRM sync submits: a CRM user's creates, edits and deletions (DESIGN.md §8). */
export const CRM_CHANNEL = 'crm';

/** Channels the service submits as itself; no channel's token may use them. */
export const RESERVED_CHANNELS: readonly string[] = [HQ_CHANNEL, CRM_CHANNEL];

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
