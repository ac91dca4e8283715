import type { TableServiceClientOptions } from '@azure/data-tables';

import { AccountIndex, AccountNumberAllocator } from './accounts';
import { CustomerStore } from './customer-store';
import { DeadLetters } from './dead-letters';
import { EmailClaims } from './email-claims';
import { CustomerFeed } from './feed';
import { FeedInFlight } from './feed-in-flight';
import { IdempotencyKeys } from './idempotency';
import { JobRunLog } from './job-runs';
import { OperationIndex } from './operation-index';
import { PendingIndex } from './pending-index';
import { TABLE_NAMES, TableSet } from './tables';

/** Every repository over one set of tables; the only place that wires @azure/data-tables clients. */
export interface Store {
  tables: TableSet;
  customers: CustomerStore;
  accounts: AccountIndex;
  accountNumbers: AccountNumberAllocator;
  emailClaims: EmailClaims;
  pending: PendingIndex;
  feed: CustomerFeed;
  feedInFlight: FeedInFlight;
  jobRuns: JobRunLog;
  idempotency: IdempotencyKeys;
  operationIndex: OperationIndex;
  deadLetters: DeadLetters;
}

export function createStore(
  connectionString: string,
  tablePrefix = '',
  clientOptions?: TableServiceClientOptions,
): Store {
  const tables = new TableSet(connectionString, tablePrefix, clientOptions);
  return {
    tables,
    customers: new CustomerStore(tables.get('customers')),
    accounts: new AccountIndex(tables.get('accounts'), tables.batcher(TABLE_NAMES.accounts)),
    accountNumbers: new AccountNumberAllocator(tables.get('sequences')),
    emailClaims: new EmailClaims(tables.get('emailClaims')),
    pending: new PendingIndex(tables.get('pending'), tables.batcher(TABLE_NAMES.pending)),
    feed: new CustomerFeed(tables.get('feed'), tables.batcher(TABLE_NAMES.feed)),
    feedInFlight: new FeedInFlight(tables.get('feedInFlight'), tables.batcher(TABLE_NAMES.feedInFlight)),
    jobRuns: new JobRunLog(tables.get('jobRuns')),
    idempotency: new IdempotencyKeys(tables.get('idempotency')),
    operationIndex: new OperationIndex(tables),
    deadLetters: new DeadLetters(tables.get('deadLetters')),
  };
}
