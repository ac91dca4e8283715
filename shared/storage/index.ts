import type { TableServiceClientOptions } from '@azure/data-tables';

import type { Store } from '../domain/ports';
import { TableAccountIndex, TableAccountNumbers } from './accounts';
import { TableAlerts } from './alerts';
import { TableCrmSyncState } from './crm-sync-state';
import { TableCustomerStore } from './customer-store';
import { TableDeadLetters } from './dead-letters';
import { TableEmailClaims } from './email-claims';
import { TableCustomerFeed } from './feed';
import { TableFeedInFlight } from './feed-in-flight';
import { TableIdempotencyKeys } from './idempotency';
import { TableJobRunLog } from './job-runs';
import { TableOperationIndex } from './operation-index';
import { TablePendingIndex } from './pending-index';
import { TableSigningKeys } from './signing-keys';
import { TableSyncErrors } from './sync-errors';
import { TableSyncLog } from './sync-log';
import { TableSyncRecords } from './sync-records';
import { type StorageTarget, TABLE_NAMES, TableSet } from './tables';

/**
 * Every repository over one set of tables, which it creates first (once per process: the composition root
 * keeps the store). The only place that wires @azure/data-tables clients.
 */
export async function openStore(
  target: StorageTarget,
  tablePrefix = '',
  clientOptions?: TableServiceClientOptions,
): Promise<Store> {
  const tables = new TableSet(target, tablePrefix, clientOptions);
  await tables.createAll();
  return {
    customers: new TableCustomerStore(tables.get('customers')),
    accounts: new TableAccountIndex(tables.get('accounts'), tables.batcher(TABLE_NAMES.accounts)),
    accountNumbers: new TableAccountNumbers(tables.get('sequences')),
    emailClaims: new TableEmailClaims(tables.get('emailClaims')),
    pending: new TablePendingIndex(tables.get('pending'), tables.batcher(TABLE_NAMES.pending)),
    feed: new TableCustomerFeed(tables.get('feed'), tables.batcher(TABLE_NAMES.feed)),
    feedInFlight: new TableFeedInFlight(tables.get('feedInFlight'), tables.batcher(TABLE_NAMES.feedInFlight)),
    operationIndex: new TableOperationIndex(tables),
    idempotency: new TableIdempotencyKeys(tables.get('idempotency')),
    jobRuns: new TableJobRunLog(tables.get('jobRuns')),
    deadLetters: new TableDeadLetters(tables.get('deadLetters')),
    syncRecords: new TableSyncRecords(tables.get('syncRecords'), tables.get('crmRows')),
    syncErrors: new TableSyncErrors(tables.get('syncErrors')),
    syncLog: new TableSyncLog(tables.get('syncLog'), tables.batcher(TABLE_NAMES.syncLog)),
    crmSyncState: new TableCrmSyncState(tables.get('crmSyncState')),
    alerts: new TableAlerts(tables.get('alertRules'), tables.get('alerts')),
    keys: new TableSigningKeys(tables.get('keys')),
    ping: () => tables.ping(),
  };
}
