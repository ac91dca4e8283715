import type { Alert, AlertRule, AlertRuleDefinition, Delivery, DeliveryState, Resolution } from './alerts';
import type { SyncError, SyncErrorKind, SyncLogEntry, SyncRecord } from './coupling';
import type { CrmTable } from './crm-mapping';
import type { Customer } from './customer';
import type { CustomerRecord, LastError, Operation, OperationHead, OperationSummary } from './operation';
import type { Versioned } from './versioned';

/**
 * What the use cases need from storage, as interfaces (ports). shared/storage implements them on Table
 * Storage (each implementation documents its keys and queries); a unit test can hand a use case an in-memory
 * fake. Conditional writes that lose a race throw WriteConflict (./versioned.ts), never a status code.
 */
export interface Store {
  customers: CustomerStore;
  accounts: AccountIndex;
  accountNumbers: AccountNumbers;
  emailClaims: EmailClaims;
  pending: PendingIndex;
  feed: CustomerFeed;
  feedInFlight: FeedInFlight;
  operationIndex: OperationIndex;
  idempotency: IdempotencyKeys;
  jobRuns: JobRunLog;
  deadLetters: DeadLetters;
  syncRecords: SyncRecords;
  syncErrors: SyncErrorIndex;
  syncLog: SyncLog;
  crmSyncState: CrmSyncState;
  alerts: AlertStore;
  keys: SigningKeys;
  /** One real round trip to storage, for the health check. */
  ping(): Promise<void>;
}

/**
 * Keys this service signs its own messages with, kept where only the service reaches: its storage account.
 * Created on first use and then the same for every instance, so no key is in any setting.
 */
export interface SigningKeys {
  /** The key of doorbells that carry what their submit wrote (shared/operations/doorbell-state.ts). */
  doorbell(): Promise<Uint8Array>;
}

/**
 * A customer's record and its operations not yet applied, in submission order, each with its ETag: what a
 * processing round starts from.
 */
export interface Unapplied {
  record: Versioned<CustomerRecord>;
  operations: Versioned<Operation>[];
}

/** A channel's Idempotency-Key for an edit, and a hash of the request it came with. */
export interface EditKey {
  channel: string;
  key: string;
  requestHash: string;
}

/** Each customer's HQ record with its operations, which change together (one partition, one transaction). */
export interface CustomerStore {
  getRecord(customerKey: string): Promise<Versioned<CustomerRecord> | undefined>;
  getOperation(customerKey: string, seq: number): Promise<Versioned<Operation> | undefined>;
  /** An operation without its bulk: cheaper to read, enough to filter and check. */
  getOperationHead(customerKey: string, seq: number): Promise<OperationHead | undefined>;
  /** The record and the operations after `appliedThrough` (at most `limit`), in submission order. */
  readUnapplied(customerKey: string, limit: number): Promise<Partial<Unapplied> & Pick<Unapplied, 'operations'>>;
  /**
   * A new customer with its first operations; WriteConflict `exists` if the customer key is taken. Returns
   * them as written, with their ETags.
   */
  insertNew(record: CustomerRecord, ...operations: Operation[]): Promise<Unapplied>;
  /**
   * Accepts an operation for an existing customer, with the record's next sequence number, and its edit key
   * if any, in one transaction: WriteConflict if the record changed since it was read or the key is taken.
   * Returns the record and the operation as written, with their ETags.
   */
  append(record: Versioned<CustomerRecord>, operation: Operation, key?: EditKey): Promise<Unapplied>;
  /** The edit accepted earlier under this key, if any. */
  editFor(customerKey: string, key: EditKey): Promise<{ seq: number; requestHash: string } | undefined>;
  /** The record and operations together or not at all; WriteConflict if any of them changed since read. */
  commit(record: Versioned<CustomerRecord>, operations: Versioned<Operation>[]): Promise<void>;
  /** Replaces one operation; WriteConflict if it changed since read. Returns the new ETag. */
  updateOperation(operation: Versioned<Operation>): Promise<string>;
  /** Every customer record, in no particular order (an operator's bulk job; nothing scheduled scans this). */
  records(): AsyncIterable<CustomerRecord>;
  /** Deletes an operation unless it changed since read (retention); false if it did or is gone. */
  deleteOperation(operation: Versioned<Operation>): Promise<boolean>;
}

/** Customer account → customer key (async customer accounts need no entry: they are the key). */
export interface AccountIndex {
  put(customerAccount: string, customerKey: string): Promise<void>;
  customerKeyOf(customerAccount: string): Promise<string | undefined>;
}

/** Hands out customer account numbers: never one twice, gaps allowed. */
export interface AccountNumbers {
  nextAccount(): Promise<string>;
}

export interface EmailClaim {
  customerKey: string;
  seq: number;
  etag: string;
}

/** "An email belongs to at most one HQ customer", across customers. */
export interface EmailClaims {
  get(email: string): Promise<EmailClaim | undefined>;
  /** Claims an unclaimed email, or takes over the claim read as `previous`. False if someone else won. */
  claim(email: string, customerKey: string, seq: number, previous?: EmailClaim): Promise<boolean>;
  /** Releases the claim unless it changed since read. */
  release(email: string, claim: EmailClaim): Promise<void>;
}

export interface PendingEntry {
  customerKey: string;
  updatedAt: string;
  nextAttemptAt?: string;
  etag: string;
}

/** Customers with operations still to apply: what the sync-pending job rings again. */
export interface PendingIndex {
  /** Lists the customer (again); returns the entry's ETag, which the doorbell carries to the processor. */
  mark(customerKey: string, now: Date, nextAttemptAt?: string): Promise<string | undefined>;
  get(customerKey: string): Promise<PendingEntry | undefined>;
  /** Clears the entry only if nobody marked it since the version with this ETag. */
  clear(entry: Pick<PendingEntry, 'customerKey' | 'etag'>): Promise<void>;
  list(): AsyncIterable<PendingEntry>;
}

/** An item of the channels' feed (API: customer-updates). */
export interface FeedItem {
  customerAccount: string;
  asyncCustomerAccount?: string;
  /** The customer as changed; for a deletion, as it was, so a consumer knows whom it removes. */
  customer: Customer;
  /** The customer was deleted in HQ. */
  deleted?: true;
  changedAt: string;
}

/** A feed item with the operation it records, which fixes its key: written twice, it is still one entry. */
export interface FeedEntry extends FeedItem {
  customerKey: string;
  seq: number;
}

export interface FeedPage {
  items: FeedItem[];
  /** Where the next read resumes. */
  cursor: string | undefined;
}

export interface CustomerFeed {
  append(entries: FeedEntry[]): Promise<void>;
  /** Entries after the cursor up to `cutoff`, oldest first. */
  read(after: string | undefined, cutoff: string, limit: number): Promise<FeedPage>;
  /** Deletes the entries changed before `day` (retention); returns how many. */
  deleteBefore(day: string): Promise<number>;
}

export interface InFlightMarker {
  partitionKey: string;
  rowKey: string;
}

export interface StoredMarker extends InFlightMarker {
  customerKey: string;
  at: string;
  fromSeq: number;
  toSeq: number;
}

/** Processing rounds that have stamped feed times but not yet written their entries (the feed's outbox). */
export interface FeedInFlight {
  /** Marks a round about to apply (some of) the operations fromSeq..toSeq. */
  begin(customerKey: string, at: Date, fromSeq: number, toSeq: number): Promise<InFlightMarker>;
  end(marker: InFlightMarker): Promise<void>;
  /** The time of the oldest round still publishing, if any. */
  oldest(): Promise<string | undefined>;
  list(): Promise<StoredMarker[]>;
}

/** An operation's entry in the operation index: its list item as of its last write. */
export interface IndexEntry {
  /** Where the index keeps the entry (its own key, read with it). */
  key: string;
  /** The submit request that wrote the entry: an operation with another request id is not this entry's. */
  requestId: string;
  customerKey: string;
  seq: number;
  /** When the failure happened (failed index only). */
  failedAt?: string;
  item: OperationSummary;
}

/** Whether an index entry stands for this operation (not an orphan left by a retried or failed submit). */
export const entryIsFor = (entry: IndexEntry, op: OperationHead) =>
  op.requestId === entry.requestId &&
  op.operationId === entry.item.operationId &&
  op.operationTimestamp === entry.item.operationTimestamp;

export interface IndexQuery {
  /** Read the failed index (the operations Failed now, however old) instead of the hour tables. */
  failed: boolean;
  /** Inclusive time bounds, ISO; required for the hour tables. */
  from?: string;
  to?: string;
  channel?: string;
  type?: string;
  /** Status (hour tables only: the failed index holds Failed operations). */
  status?: string;
  /** Last error code. */
  code?: string;
  fields: { field: string; value: string }[];
}

/** Where a page of the index ended: an hour (or '' for the failed index) and the last entry read in it. */
export interface IndexPosition {
  hour: string;
  rowKey: string;
  /** How much time (ms) the page that ended here covered in that hour: about how far the next one reads first. */
  spanMs?: number;
}

export interface IndexPage {
  items: OperationSummary[];
  next?: IndexPosition;
}

/** Lets operators find operations without scanning the customers. */
export interface OperationIndex {
  /** Writes (or rewrites, after a repair) an operation's entries in its hour. */
  put(op: Operation): Promise<void>;
  /**
   * Brings the index in line with an operation just written: its hour entries, and its failed entry — written
   * while it is Failed, removed once it has left the failure recorded in `previous` (its last error before).
   */
  update(op: Operation, previous?: LastError): Promise<void>;
  putFailed(op: Operation): Promise<void>;
  /** Removes an operation's failed entry, but only the one for the failure at `failedAt`. */
  removeFailed(op: Pick<OperationSummary, 'operationId' | 'operationTimestamp'>, failedAt?: string): Promise<void>;
  /**
   * One page of list items matching the query, newest first, resuming after `after`; at most `top` items, and
   * fewer (with a next position) when the page reached its read budget first. Undefined when `after` is not
   * a position of this query (a forged or foreign one).
   */
  page(query: IndexQuery, top: number, after?: IndexPosition): Promise<IndexPage | undefined>;
  /** Every failed entry, newest first. */
  failedEntries(): AsyncIterable<IndexEntry>;
  /** Every hour (yyyymmddhh) that has entries, oldest first; with `before` (ISO), those before its hour. */
  hours(before?: string): Promise<string[]>;
  entriesOfHour(hour: string): AsyncIterable<IndexEntry>;
  remove(hour: string, entry: IndexEntry): Promise<void>;
  /** Drops an hour once nothing in it is kept. */
  dropHour(hour: string): Promise<void>;
}

export interface IdempotentAnswer {
  requestHash: string;
  operationId: string;
  asyncCustomerAccount: string;
}

/** A create's Idempotency-Key → the answer given (an edit's key lives with its customer). */
export interface IdempotencyKeys {
  /** Stores the answer unless the key is already used; returns the answer that holds for the key. */
  claim(channel: string, key: string, answer: IdempotentAnswer): Promise<IdempotentAnswer>;
}

/** A sync job run (API: GET /api/jobs). */
export interface JobRun {
  job: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  counts: Record<string, number>;
  /** Counts per direction, for jobs that synchronize both ways (crm-sync). */
  directions?: Record<string, Record<string, number>>;
  message: string;
}

export interface JobRunLog {
  record(run: JobRun): Promise<void>;
  /** The newest `limit` runs of these jobs, newest first. */
  latest(jobs: readonly string[], limit: number): Promise<JobRun[]>;
  /** Deletes runs started before `before` (retention); returns how many. */
  deleteBefore(jobs: readonly string[], before: string): Promise<number>;
}

/** A queue message that is not a doorbell, kept with the reason it was refused. */
export interface DeadLetter {
  messageId: string;
  reason: string;
  /** The message body as received (as JSON text when it was not text), possibly cut short. */
  body: string;
  receivedAt: string;
}

export interface DeadLetters {
  add(entry: DeadLetter): Promise<void>;
  /** The newest `top` dead letters. */
  latest(top: number): Promise<DeadLetter[]>;
  /** How many were received at or after `since` (the deadLetters alert metric). */
  countSince(since: string): Promise<number>;
  /** Deletes dead letters received before `before` (retention); returns how many. */
  deleteBefore(before: string): Promise<number>;
}

/** Each HQ customer's coupling state (DESIGN.md §8), and the reverse index from a CRM row to its customer. */
export interface SyncRecords {
  get(customerKey: string): Promise<Versioned<SyncRecord> | undefined>;
  /** Inserts the record (no ETag) or replaces the version read; WriteConflict if it changed. Returns the ETag. */
  save(record: SyncRecord, etag?: string): Promise<string>;
  /** The customer a CRM row is (or was) coupled with; callers check the record agrees. */
  customerKeyOfRow(crmTable: CrmTable, crmId: string): Promise<string | undefined>;
  linkRow(crmTable: CrmTable, crmId: string, customerKey: string): Promise<void>;
  /** Every record (match runs, full reconciliation), in no particular order. */
  list(): AsyncIterable<SyncRecord>;
}

/** A sync error as the list shows it. */
export interface SyncErrorEntry extends SyncError {
  customerKey: string;
  customerAccount: string;
  crmTable: CrmTable;
  crmId: string;
  skipped: boolean;
}

/** Open sync errors, newest first (API: GET /api/sync-errors). */
export interface SyncErrorIndex {
  put(entry: SyncErrorEntry): Promise<void>;
  remove(entry: Pick<SyncErrorEntry, 'kind' | 'failedOn' | 'customerKey'>): Promise<void>;
  /** A page of entries, newest first, of one kind or all, after a position a previous page returned. */
  page(
    kind: SyncErrorKind | undefined,
    top: number,
    after?: string,
  ): Promise<{ items: SyncErrorEntry[]; next?: string }>;
  /** How many are open, of every kind (the syncErrors alert metric). */
  count(): Promise<number>;
}

/** Each record's synchronization log (API: GET /api/customers/{account}/sync-log). */
export interface SyncLog {
  append(customerKey: string, entries: SyncLogEntry[]): Promise<void>;
  /** Newest first, after a position a previous page returned. */
  page(customerKey: string, top: number, after?: string): Promise<{ items: SyncLogEntry[]; next?: string }>;
}

/** Where the crm-sync job resumes: the customer feed's cursor and a delta link per CRM table. */
export interface CrmCursor {
  feed?: string;
  deltaLinks: Partial<Record<CrmTable, string>>;
}

export interface Lease {
  holder: string;
  etag: string;
}

/** The crm-sync job's own state: its lease, its cursors, and the HQ operations it waits for. */
export interface CrmSyncState {
  /** Takes the job's lease until `until` unless another holder has an unexpired one. */
  acquire(job: string, holder: string, now: Date, until: Date): Promise<Lease | undefined>;
  release(job: string, lease: Lease): Promise<void>;
  cursor(): Promise<CrmCursor>;
  saveCursor(cursor: CrmCursor): Promise<void>;
  /** Customers with an operation submitted from a CRM change that the job has not yet seen applied. */
  awaiting(): Promise<string[]>;
  await(customerKey: string): Promise<void>;
  settled(customerKey: string): Promise<void>;
}

/**
 * Alert rules, their alerts and the webhook deliveries still to make (the outbox). A rule's state changes only
 * with its ETag; an alert and its delivery are written together, once.
 */
export interface AlertStore {
  getRule(name: string): Promise<Versioned<AlertRule> | undefined>;
  rules(): Promise<Versioned<AlertRule>[]>;
  /** Creates the rule or changes its definition, keeping its open alert; returns it as stored. */
  putRule(definition: AlertRuleDefinition, now: Date): Promise<AlertRule>;
  /** Replaces the version read; WriteConflict if it changed. Returns the new ETag. */
  saveRule(rule: AlertRule, etag: string): Promise<string>;
  /** Deletes the version read; WriteConflict if it changed. */
  deleteRule(name: string, etag: string): Promise<void>;
  /** Records an alert with its delivery in one transaction; nothing if that alert is already recorded. */
  recordFiring(alert: Alert, delivery?: Delivery): Promise<void>;
  /** Records the resolution of the alert with its delivery in one transaction; nothing if already resolved. */
  recordResolution(rule: string, firedAt: string, resolution: Resolution, delivery?: Delivery): Promise<void>;
  /** A page of alerts, newest first, after a position a previous page returned. */
  page(top: number, after?: string): Promise<{ items: Alert[]; next?: string }>;
  /** Deliveries due at `now`, at most `limit`. */
  dueDeliveries(now: string, limit: number): Promise<Versioned<Delivery>[]>;
  /**
   * Records the outcome of an attempt on the alert; a delivery that is Delivered or Failed leaves the outbox, a
   * Pending one stays with its next attempt. WriteConflict if someone else took the delivery meanwhile.
   */
  deliveryAttempted(delivery: Versioned<Delivery>, state: DeliveryState): Promise<void>;
}
