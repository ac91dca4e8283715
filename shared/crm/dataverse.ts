import { ClientSecretCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { DynamicsWebApi, type RequestError } from 'dynamics-web-api';

import { BudgetSpent, type Crm, type CrmChanges, CrmRefused, type CrmRow } from '../domain/crm';
import { type CrmTable, MAPPINGS, selectedColumns } from '../domain/crm-mapping';
import { WriteConflict } from '../domain/versioned';

/**
 * The CRM port over the Dataverse Web API, through `dynamics-web-api` (the maintained client): the same code
 * path against a real environment and the development Dataverse. The only place that imports it.
 *
 * Dataverse's service protection allows 6,000 requests and 1,200 s of execution per 5 minutes per user and 52
 * concurrent requests, and answers 429 with Retry-After. So every call waits for one of `concurrency` slots,
 * a 429 waits as long as Retry-After says (holding its slot, so the whole run backs off), and a transient
 * failure (5xx, timeout, reset) is tried again with backoff. Every write is conditional, which makes a retry
 * safe: a create whose answer was lost finds its row on the retry (412), an update or delete whose answer was
 * lost meets its own version change (412), and the use case reads the row to tell which happened.
 */
export interface DataverseOptions {
  /** The environment's URL, e.g. https://contoso.crm4.dynamics.com (the Web API is under api/data/v9.2/). */
  url: string;
  /** A fixed bearer token (the development Dataverse accepts any); otherwise `credential` is used. */
  token?: string;
  credential?: TokenCredential;
  concurrency: number;
  timeoutMs: number;
  log: (message: string) => void;
}

/** A credential from settings: a client secret when given, else the app's managed identity. */
export function dataverseCredential(s: { tenantId?: string; clientId?: string; clientSecret?: string }) {
  if (s.tenantId && s.clientId && s.clientSecret)
    return new ClientSecretCredential(s.tenantId, s.clientId, s.clientSecret);
  return new ManagedIdentityCredential(s.clientId ? { clientId: s.clientId } : {});
}

const TRANSIENT_ATTEMPTS = 4;
const MAX_PAGE = 5000;
/** Dataverse's error code for a change tracking token that has expired. */
const EXPIRED_TOKEN = '0x80044352';

/** Bounds how many requests are in flight, shared by every run of the process. */
class Slots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

export class Dataverse {
  private readonly api: DynamicsWebApi;
  private readonly slots: Slots;

  constructor(private readonly options: DataverseOptions) {
    const scope = `${new URL(options.url).origin}/.default`;
    this.api = new DynamicsWebApi({
      serverUrl: options.url,
      dataApi: { version: '9.2' },
      timeout: options.timeoutMs,
      // Errors as errors: the library otherwise turns a 412 on a conditional write into `false`.
      propagateErrors: true,
      onTokenRefresh: async () => {
        if (options.token) return options.token;
        const token = await options.credential!.getToken(scope);
        if (!token) throw new Error(`No token for ${scope} from the configured credential.`);
        return token.token;
      },
    });
    this.slots = new Slots(options.concurrency);
  }

  /** The port for one run: its calls stop with BudgetSpent once `deadline` (epoch ms) has passed. */
  session(deadline: number): Crm {
    return new DataverseSession(this.api, this.slots, deadline, this.options.log);
  }
}

const statusOf = (error: unknown) => (error as RequestError | undefined)?.status;
const codeOf = (error: unknown) => (error as RequestError | undefined)?.code;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class DataverseSession implements Crm {
  private readonly matches = new MatchBatcher(
    (table, filter, top) => this.query(table, filter, top),
    (table, column, value, top) => this.findWhere(table, { [column]: value }, top),
  );

  constructor(
    private readonly api: DynamicsWebApi,
    private readonly slots: Slots,
    private readonly deadline: number,
    private readonly log: (message: string) => void,
  ) {}

  async changes(table: CrmTable, deltaLink?: string): Promise<CrmChanges> {
    if (deltaLink) {
      try {
        return await this.readAll(table, { full: false, link: deltaLink });
      } catch (error) {
        if (!(error instanceof CrmRefused && error.code === EXPIRED_TOKEN)) throw error;
        this.log(`Change tracking token of ${table} expired: reading every row to reconcile.`);
      }
    }
    return this.readAll(table, { full: true });
  }

  private async readAll(table: CrmTable, from: { full: boolean; link?: string }): Promise<CrmChanges> {
    const mapping = MAPPINGS[table];
    const changes: CrmChanges = { rows: [], deleted: [], deltaLink: '', full: from.full };
    const request = {
      collection: table,
      select: [...selectedColumns(mapping), 'versionnumber'],
      maxPageSize: MAX_PAGE,
      trackChanges: true,
    };
    let link = from.link;
    for (;;) {
      const page = await this.call(() => this.api.retrieveMultiple<Record<string, unknown>>(request, link));
      for (const item of page.value) {
        const context = item['@odata.context'];
        if (typeof context === 'string' && context.endsWith('$deletedEntity')) changes.deleted.push(String(item.id));
        else changes.rows.push(toRow(table, item));
      }
      if (page.oDataNextLink) link = page.oDataNextLink;
      else {
        changes.deltaLink = page.oDataDeltaLink ?? '';
        return changes;
      }
    }
  }

  async get(table: CrmTable, id: string): Promise<CrmRow | undefined> {
    const select = [...selectedColumns(MAPPINGS[table]), 'versionnumber'];
    try {
      const row = await this.call(() =>
        this.api.retrieve<Record<string, unknown>>({ collection: table, key: id, select }),
      );
      return toRow(table, row);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async find(table: CrmTable, values: Record<string, string>, top: number): Promise<CrmRow[]> {
    const criteria = Object.entries(values);
    if (criteria.length === 1) {
      const [column, value] = criteria[0]!;
      if (MatchBatcher.canShare(value)) return this.matches.find(table, column, value, top);
    }
    return this.findWhere(table, values, top);
  }

  /** One query: rows whose columns equal all these values (OData `and`), at most `top`. */
  private async findWhere(table: CrmTable, values: Record<string, string>, top: number): Promise<CrmRow[]> {
    const filter = Object.entries(values)
      .map(([column, value]) => `${column} eq ${literal(value)}`)
      .join(' and ');
    return this.query(table, filter, top);
  }

  private async query(table: CrmTable, filter: string, top: number): Promise<CrmRow[]> {
    const select = [...selectedColumns(MAPPINGS[table]), 'versionnumber'];
    const page = await this.call(() =>
      this.api.retrieveMultiple<Record<string, unknown>>({ collection: table, select, filter, top }),
    );
    return page.value.map((row) => toRow(table, row));
  }

  async create(table: CrmTable, id: string, columns: Record<string, unknown>): Promise<CrmRow> {
    // An upsert that may only insert (If-None-Match: *): a retry after a lost answer gets 412, not a second row.
    return this.write(table, 'exists', () =>
      this.api.upsert<Record<string, unknown>>({
        collection: table,
        key: id,
        data: { ...columns },
        ifnonematch: '*',
        returnRepresentation: true,
        select: [...selectedColumns(MAPPINGS[table]), 'versionnumber'],
      }),
    );
  }

  async update(table: CrmTable, id: string, version: string, columns: Record<string, unknown>): Promise<CrmRow> {
    return this.write(table, 'changed', () =>
      this.api.update<Record<string, unknown>>({
        collection: table,
        key: id,
        data: { ...columns },
        ifmatch: `W/"${version}"`,
        returnRepresentation: true,
        select: [...selectedColumns(MAPPINGS[table]), 'versionnumber'],
      }),
    );
  }

  async remove(table: CrmTable, id: string, version?: string): Promise<void> {
    try {
      await this.call(() =>
        this.api.deleteRecord({ collection: table, key: id, ...(version ? { ifmatch: `W/"${version}"` } : {}) }),
      );
    } catch (error) {
      if (statusOf(error) === 404) return;
      if (statusOf(error) === 412) throw new WriteConflict('changed');
      throw error;
    }
  }

  /** A conditional write; its failed condition (412), or a row gone (404), is a WriteConflict. */
  private async write(
    table: CrmTable,
    conflict: 'exists' | 'changed',
    request: () => Promise<Record<string, unknown>>,
  ): Promise<CrmRow> {
    try {
      return toRow(table, await this.call(request));
    } catch (error) {
      if (statusOf(error) === 412 || statusOf(error) === 404) throw new WriteConflict(conflict);
      throw error;
    }
  }

  /**
   * One request with the service protection rules: a slot, Retry-After on 429, backoff on transient failures,
   * and the run's deadline. 4xx answers other than 404, 412 and 429 mean the CRM refused the request (with
   * Dataverse's error code, which tells an expired delta link).
   */
  private async call<T>(request: () => Promise<T>): Promise<T> {
    return this.slots.run(async () => {
      for (let attempt = 1; ; attempt++) {
        if (Date.now() >= this.deadline) throw new BudgetSpent();
        try {
          return await request();
        } catch (error) {
          const status = statusOf(error);
          let waitMs: number;
          if (status === 429) {
            const retryAfter = Number((error as RequestError).headers?.['retry-after']);
            // `Retry-After: 0` means now; a floor keeps a server that keeps saying so from being hammered.
            waitMs = Number.isFinite(retryAfter) && retryAfter >= 0 ? Math.max(retryAfter * 1000, 200) : 5000;
          } else if (status === undefined || status >= 500) {
            if (attempt >= TRANSIENT_ATTEMPTS) throw error;
            waitMs = 250 * 2 ** attempt;
          } else if (status === 404 || status === 412) {
            throw error;
          } else {
            const message = `Dataverse refused the request (${status}): ${(error as Error).message}`;
            throw new CrmRefused(message, codeOf(error));
          }
          if (Date.now() + waitMs >= this.deadline) throw new BudgetSpent();
          await sleep(waitMs);
        }
      }
    });
  }
}

/** An OData string literal: a quote is escaped by doubling it, so user data never ends a literal early. */
const literal = (value: string) => `'${value.replaceAll("'", "''")}'`;

/**
 * dynamics-web-api sends a request whose path (collection and query) is longer than 2,000 characters as a
 * $batch instead (which the development Dataverse does not serve): a shared query stays well below.
 */
const MAX_QUERY_PATH = 1800;
/** Values per shared query: with `top` 10 each, an answer of at most 250 rows. */
const MAX_SHARED = 25;
/** How long the first match query of a moment waits for others to share it (a record's sync takes longer). */
const GATHER_MS = 20;

interface WaitingMatch {
  value: string;
  key: string;
  resolve: (rows: CrmRow[]) => void;
  reject: (error: unknown) => void;
}

/**
 * Match queries on one column, shared between the records a run matches at the same time (DESIGN.md §8: an
 * uncoupled record is matched before it is inserted, nearly always on email alone). While one query of a
 * table and column is in flight, the next ones queue up and go together as `col eq 'a' or col eq 'b' …`: with
 * CRM_CONCURRENCY records in flight, one request matches many of them instead of one each. A query alone
 * waits GATHER_MS for company, then goes as it always did.
 *
 * Every caller gets exactly the rows its own query would have returned. Dataverse compares text ignoring case
 * (and, by its collation, accents and trailing spaces), so only printable-ASCII values share a query, at most
 * one per case-insensitive text, and a row goes to the value it equals ignoring case and trailing spaces. For
 * ASCII values that is exactly how Dataverse compares them, so a row the server matched with a value is
 * given to that value, and to no other. Whatever cannot be told apart that way — a row no value claims (a
 * non-ASCII twin the collation equates), an answer that may have been cut at its $top, a failed query — is
 * asked again one value at a time, each caller on its own.
 */
class MatchBatcher {
  private readonly queues = new Map<string, WaitingMatch[]>();
  /** Ends the gathering of a queue early, once it holds a full batch. */
  private readonly wakers = new Map<string, () => void>();

  constructor(
    private readonly query: (table: CrmTable, filter: string, top: number) => Promise<CrmRow[]>,
    private readonly single: (table: CrmTable, column: string, value: string, top: number) => Promise<CrmRow[]>,
  ) {}

  static canShare(value: string): boolean {
    return /^[\x20-\x7e]+$/.test(value);
  }

  find(table: CrmTable, column: string, value: string, top: number): Promise<CrmRow[]> {
    return new Promise((resolve, reject) => {
      const item: WaitingMatch = { value, key: keyOf(value), resolve, reject };
      const id = `${table}|${column}|${top}`;
      const queue = this.queues.get(id);
      if (queue) {
        queue.push(item);
        if (queue.length >= MAX_SHARED) this.wakers.get(id)?.();
        return;
      }
      this.queues.set(id, [item]);
      void this.drain(id, table, column, top);
    });
  }

  /**
   * Gathers for a moment, then sends the queue in shared queries, one at a time, until it is empty. Against
   * the development Dataverse an answer takes a few milliseconds, too short to gather much while it is in
   * flight; against a real environment a request takes longer than the moment.
   */
  private async drain(id: string, table: CrmTable, column: string, top: number): Promise<void> {
    const queue = this.queues.get(id)!;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, GATHER_MS);
      this.wakers.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.wakers.delete(id);
    while (queue.length > 0) await this.send(table, column, top, this.take(queue, table, column, top));
    this.queues.delete(id);
  }

  /** The next batch: distinct texts (ignoring case), as many as the path allows; the rest wait for the next. */
  private take(queue: WaitingMatch[], table: CrmTable, column: string, top: number): WaitingMatch[] {
    const batch: WaitingMatch[] = [];
    const keys = new Set<string>();
    for (let i = 0; i < queue.length && keys.size < MAX_SHARED;) {
      const item = queue[i]!;
      const known = keys.has(item.key);
      if (known && !batch.some((b) => b.value === item.value)) {
        i++; // the same text in another case: its own batch, later
        continue;
      }
      const values = [...new Set([...batch, item].map((b) => b.value))];
      if (batch.length > 0 && !known && pathLength(table, column, values, top) > MAX_QUERY_PATH) break;
      batch.push(item);
      keys.add(item.key);
      queue.splice(i, 1);
    }
    return batch;
  }

  private async send(table: CrmTable, column: string, top: number, batch: WaitingMatch[]): Promise<void> {
    const values = [...new Set(batch.map((b) => b.value))];
    if (values.length === 1) {
      // One text (perhaps several callers): the query as it always was.
      await this.single(table, column, values[0]!, top).then(
        (rows) => batch.forEach((b) => b.resolve(rows)),
        (error: unknown) => batch.forEach((b) => b.reject(error)),
      );
      return;
    }
    let rows: CrmRow[] | undefined;
    try {
      rows = await this.query(table, sharedFilter(column, values), values.length * top);
    } catch (error) {
      if (error instanceof BudgetSpent) return batch.forEach((b) => b.reject(error));
      // Otherwise each caller asks on its own below, and learns its own outcome.
    }
    // Fewer rows than $top: the answer is whole.
    if (rows && rows.length < values.length * top) {
      const byKey = new Map(values.map((value) => [keyOf(value), [] as CrmRow[]]));
      const claimed = rows.every((row) => byKey.get(keyOf(String(row.columns[column] ?? '')))?.push(row));
      if (claimed) return batch.forEach((b) => b.resolve(byKey.get(b.key)!.slice(0, top)));
    }
    await Promise.all(
      batch.map((b) =>
        this.single(table, column, b.value, top).then(b.resolve, (error: unknown) => {
          b.reject(error);
        }),
      ),
    );
  }
}

const keyOf = (text: string) => text.toLowerCase().trimEnd();
const sharedFilter = (column: string, values: string[]) =>
  values.map((value) => `${column} eq ${literal(value)}`).join(' or ');
/** The path dynamics-web-api builds for the shared query (collection and query string). */
function pathLength(table: CrmTable, column: string, values: string[], top: number): number {
  const select = [...selectedColumns(MAPPINGS[table]), 'versionnumber'].join(',');
  const filter = encodeURIComponent(sharedFilter(column, values));
  return `${table}?$select=${select}&$filter=${filter}&$top=${values.length * top}`.length;
}

function toRow(table: CrmTable, row: Record<string, unknown>): CrmRow {
  const id = row[MAPPINGS[table].idColumn];
  return { id: String(id).toLowerCase(), version: String(row.versionnumber), columns: row };
}
