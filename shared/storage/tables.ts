import type { TokenCredential } from '@azure/core-auth';
import {
  odata,
  RestError,
  TableClient as Client,
  type TableClient,
  type TableEntity,
  TableServiceClient,
  type TableServiceClientOptions,
} from '@azure/data-tables';

import { WriteConflict } from '../domain/versioned';
import { WriteBatcher } from './write-batcher';

const MAX_TIME = 9_999_999_999_999;
/** Milliseconds before the year 2286, zero-padded: as a RowKey prefix it lists the newest first. */
export const invertedTime = (iso: string) => String(MAX_TIME - Date.parse(iso)).padStart(13, '0');

/**
 * The tables created at start-up, by their names without the prefix (TABLE_PREFIX gives tests and
 * side-by-side deployments a set of their own). The hourly operation index tables (`Ops<yyyymmddhh>`) are
 * created at run time by their owner, shared/storage/operation-index.ts.
 */
export const TABLE_NAMES = {
  customers: 'Customers',
  accounts: 'CustomerAccounts',
  emailClaims: 'EmailClaims',
  pending: 'PendingCustomers',
  feedInFlight: 'FeedInFlight',
  feed: 'CustomerFeed',
  jobRuns: 'JobRuns',
  idempotency: 'IdempotencyKeys',
  failedOperations: 'FailedOperations',
  sequences: 'Sequences',
  deadLetters: 'DeadLetters',
  syncRecords: 'SyncRecords',
  crmRows: 'CrmRows',
  syncErrors: 'SyncErrors',
  syncLog: 'SyncLog',
  crmSyncState: 'CrmSyncState',
  alertRules: 'AlertRules',
  alerts: 'Alerts',
  keys: 'Keys',
} as const;
export type TableName = keyof typeof TABLE_NAMES;

/**
 * Transient storage failures are retried three times, from 0.25 s and doubling up to 2 s: a request that meets a
 * storage outage answers 503 within a few seconds (the SDK's default, from 0.8 s, held it for about ten), and the
 * channel retries it then, as the 503's Retry-After says.
 */
const STORAGE_RETRY = { maxRetries: 3, retryDelayInMs: 250, maxRetryDelayInMs: 2000 };

/**
 * Where the tables are: a connection string (Azurite locally, or an account key), or the account's table
 * endpoint and a token credential (a managed identity in Azure: no key in any setting).
 */
export type StorageTarget = string | { endpoint: string; credential: TokenCredential };

/** One client per table and process, sharing connections; and the group-commit writer of each table. */
export class TableSet {
  private readonly clients = new Map<string, TableClient>();
  private readonly batchers = new Map<string, WriteBatcher>();
  private service?: TableServiceClient;

  constructor(
    private readonly target: StorageTarget,
    private readonly prefix = '',
    /** Extra client options, e.g. a pipeline policy that meters requests (the benchmark's). */
    private readonly clientOptions: TableServiceClientOptions = {},
  ) {}

  get(name: TableName): TableClient {
    return this.dynamic(TABLE_NAMES[name]);
  }

  /** Any table by its name without the prefix; run-time tables (per-hour index tables) are created by their owner. */
  dynamic(name: string): TableClient {
    let client = this.clients.get(name);
    if (!client) {
      const { target, options } = this;
      client =
        typeof target === 'string'
          ? Client.fromConnectionString(target, this.prefix + name, options)
          : new Client(target.endpoint, this.prefix + name, target.credential, options);
      this.clients.set(name, client);
    }
    return client;
  }

  /** The table's group-commit writer: one per table and process, so concurrent requests share transactions. */
  batcher(name: string): WriteBatcher {
    let batcher = this.batchers.get(name);
    if (!batcher) {
      batcher = new WriteBatcher(this.dynamic(name));
      this.batchers.set(name, batcher);
    }
    return batcher;
  }

  /**
   * Names (without the prefix) of the run-time tables whose name starts with `stem`, e.g. every `Ops<hour>`;
   * with `from`/`to`, only those whose suffix is within them (inclusive, compared as text). In name order.
   */
  async listDynamic(stem: string, from = '', to?: string): Promise<string[]> {
    const { target, options } = this;
    this.service ??=
      typeof target === 'string'
        ? TableServiceClient.fromConnectionString(target, options)
        : new TableServiceClient(target.endpoint, target.credential, options);
    const first = this.prefix + stem;
    const names: string[] = [];
    const filter = odata`TableName ge ${first + from} and TableName le ${`${first}${to ?? '~'}`}`;
    for await (const table of this.service.listTables({ queryOptions: { filter } })) {
      if (table.name?.startsWith(first)) names.push(table.name.slice(this.prefix.length));
    }
    return names.sort();
  }

  private get options() {
    return {
      retryOptions: STORAGE_RETRY,
      ...this.clientOptions,
      allowInsecureConnection: isLocalEndpoint(this.target),
    };
  }

  async dropDynamic(name: string): Promise<void> {
    await this.dynamic(name).deleteTable();
  }

  /** Creates every table of TABLE_NAMES; createTable is a no-op for a table that exists. */
  async createAll(): Promise<void> {
    await Promise.all((Object.keys(TABLE_NAMES) as TableName[]).map((name) => this.get(name).createTable()));
  }

  /** One real round trip to storage (a point read that finds nothing), for the health check. */
  async ping(): Promise<void> {
    await getOrUndefined(this.get('sequences'), 'health', 'ping');
  }
}

const isLocalEndpoint = (target: StorageTarget) =>
  typeof target === 'string'
    ? /UseDevelopmentStorage=true|Endpoint=http:\/\/(127\.0\.0\.1|localhost)/i.test(target)
    : /^http:\/\/(127\.0\.0\.1|localhost)[:/]/i.test(target.endpoint);

export const hasStatus = (error: unknown, ...codes: number[]): boolean =>
  error instanceof RestError && error.statusCode !== undefined && codes.includes(error.statusCode);

/**
 * Runs a conditional write and turns the storage answers that mean "someone else wrote first" into a
 * WriteConflict: 412, the ETag no longer matches; 409, the entity already exists. Entity-group transactions
 * answer with the status of the action that failed.
 */
export async function conditionally<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (hasStatus(error, 412)) throw new WriteConflict('changed');
    if (hasStatus(error, 409)) throw new WriteConflict('exists');
    throw error;
  }
}

/** 404 from a point read means "absent", which callers model as undefined. */
export async function getOrUndefined<T extends object>(
  table: TableClient,
  partitionKey: string,
  rowKey: string,
  select?: string[],
): Promise<(TableEntity<T> & { etag: string }) | undefined> {
  try {
    const options = select && { queryOptions: { select } };
    return (await table.getEntity<T>(partitionKey, rowKey, options)) as TableEntity<T> & { etag: string };
  } catch (error) {
    if (hasStatus(error, 404)) return undefined;
    throw error;
  }
}

/**
 * Keys may not contain / \ # ? or control characters, and user input (emails, idempotency keys) can.
 * Percent-encoding those (and % itself) keeps keys readable, unique and reversible.
 */
export const encodeKey = (value: string): string =>
  // eslint-disable-next-line no-control-regex
  value.replace(/[%/\\#?\u0000-\u001f\u007f-\u009f]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

/**
 * A string property holds at most 64 KiB (32K UTF-16 characters), but a customer with 50 long attributes
 * can exceed that, so JSON values are split across `<name>`, `<name>_1`, `<name>_2`, ...
 */
const CHUNK = 30_000;
export function packJson(name: string, value: unknown): Record<string, string> {
  const json = JSON.stringify(value);
  const out: Record<string, string> = { [name]: json.slice(0, CHUNK) };
  for (let i = 1; i * CHUNK < json.length; i++) out[`${name}_${i}`] = json.slice(i * CHUNK, (i + 1) * CHUNK);
  return out;
}

export function unpackJson<T>(entity: Record<string, unknown>, name: string): T | undefined {
  let json = entity[name];
  if (typeof json !== 'string') return undefined;
  for (let i = 1; typeof entity[`${name}_${i}`] === 'string'; i++) json += entity[`${name}_${i}`] as string;
  return JSON.parse(json) as T;
}

/**
 * Spreads keys over `shard-00`..`shard-NN` partitions. Fewer shards mean bigger group-commit transactions
 * (WriteBatcher), more shards more partitions to take the writes; each table picks its count.
 */
export const shardName = (n: number) => `shard-${String(n).padStart(2, '0')}`;
export function shardOf(key: string, shards: number): string {
  let hash = 0;
  for (let i = 0; i < key.length; i++) hash = (hash * 31 + key.charCodeAt(i)) >>> 0;
  return shardName(hash % shards);
}
