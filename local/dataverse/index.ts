/**
 * Development Dataverse: the part of the Dataverse Web API the service uses (accounts and contacts; reads with
 * $select/$filter/$top/$orderby and paging; change tracking with delta links; create, upsert and delete with
 * ETags), on node:http, so the app reaches it through dynamics-web-api exactly as it reaches a real environment.
 * There is no Dataverse emulator; this is the CRM for `npm start` and the tests, with fault switches a real
 * environment cannot offer.
 */
import type { AddressInfo } from 'node:net';

import { seconds, settlesWithin } from '../deadline';
import { WebApi } from './api';
import {
  type DevDataverseFaults,
  type DevDataverseStats,
  FaultSwitches,
  type RateLimit,
  RateLimiter,
  RequestStats,
} from './faults';
import { loadSnapshot, SnapshotFile } from './persistence';
import { API_PATH, createDataverseServer } from './server';
import { type Row, Store, TABLES } from './store';

export type { DevDataverseFaults, DevDataverseStats, FaultFilter, RateLimit } from './faults';
export type { ColumnValue, Row } from './store';

export interface DevDataverseOptions {
  /** 0 picks a free port. Default 7072, where `npm start` runs it. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Keep the tables and change log in this JSON file (loaded at start, saved after writes and on close). */
  dataFile?: string;
  /** Service protection: 429 + Retry-After above maxRequests per sliding windowMs. Default off. */
  rateLimit?: RateLimit;
  log?: (line: string) => void;
}

export interface DevDataverse {
  /** e.g. http://127.0.0.1:7072: dynamics-web-api's serverUrl. */
  readonly url: string;
  /** url + '/api/data/v9.2/'. */
  readonly apiUrl: string;
  readonly port: number;
  readonly faults: DevDataverseFaults;
  stats(): DevDataverseStats;
  resetStats(): void;
  /** The live rows of a table in change order (copies). */
  rows(table: string): Row[];
  row(table: string, id: string): Row | undefined;
  close(): Promise<void>;
}

/** How long the listener gets to close once every connection is cut, and the snapshot to be written. */
const CLOSE_LIMIT_MS = 5000;

export async function startDevDataverse(options: DevDataverseOptions = {}): Promise<DevDataverse> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => {});
  let store: Store;
  try {
    store = new Store(options.dataFile ? loadSnapshot(options.dataFile) : undefined);
  } catch (error) {
    throw new Error(`${options.dataFile}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const snapshotFile = options.dataFile ? new SnapshotFile(options.dataFile, store, log) : undefined;
  if (snapshotFile) store.onChange = () => snapshotFile.changed();

  const faults = new FaultSwitches(() => store.expireDeltaTokens());
  const stats = new RequestStats();
  const limiter = options.rateLimit ? new RateLimiter(options.rateLimit) : undefined;
  const { server, abortDelays } = createDataverseServer({ api: new WebApi(store), faults, stats, limiter, log });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 7072, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => log(`server error: ${error.message}`));

  const port = (server.address() as AddressInfo).port;
  const clientHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${clientHost}:${port}`;
  const tables = Object.keys(TABLES)
    .map((name) => `${name} ${[...store.rowsInChangeOrder(name)].length}`)
    .join(', ');
  log(`listening on ${url}${API_PATH} (${options.dataFile ? `${tables} from ${options.dataFile}` : 'in memory'})`);

  const checkTable = (table: string) => {
    if (!store.has(table))
      throw new Error(`the development Dataverse has no table ${table}; it has ${Object.keys(TABLES).join(', ')}`);
  };
  let closing: Promise<void> | undefined;
  const shutdown = async () => {
    abortDelays();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Keep-alive connections would hold close() open until the client drops them.
    server.closeAllConnections();
    if (!(await settlesWithin(closed, CLOSE_LIMIT_MS))) {
      console.warn(`development Dataverse: its listener did not close within ${seconds(CLOSE_LIMIT_MS)}; going on`);
    }
    if (snapshotFile && !(await settlesWithin(snapshotFile.flush(), CLOSE_LIMIT_MS))) {
      console.warn(`development Dataverse: ${options.dataFile} was not saved within ${seconds(CLOSE_LIMIT_MS)}`);
    }
  };

  return {
    url,
    apiUrl: `${url}${API_PATH}`,
    port,
    faults,
    stats: () => stats.snapshot(),
    resetStats: () => stats.reset(),
    rows: (table) => {
      checkTable(table);
      return [...store.rowsInChangeOrder(table)].map((row) => ({ ...row }));
    },
    row: (table, id) => {
      checkTable(table);
      const row = store.get(table, id.toLowerCase());
      return row && { ...row };
    },
    close: () => (closing ??= shutdown()),
  };
}
