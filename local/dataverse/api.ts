/**
 * The Web API operations: what each request under /api/data/v9.2/ does to the store and what it answers, with
 * Dataverse's status codes, headers and body shapes. Transport concerns (sockets, body limits, auth, throttling,
 * fault switches) stay in server.ts, so this is a function from a parsed request to an answer.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

import { errors } from './errors';
import { matches } from './filter';
import {
  compareKeys,
  decodePageToken,
  encodePageToken,
  MAX_PAGE_SIZE,
  type PageToken,
  parsePrefer,
  parseQuery,
  type Preferences,
  type QueryOptions,
} from './query';
import { columnOf, type ColumnValue, isColumnName, type Row, SERVER_COLUMNS, type Store, TABLES } from './store';

export interface ApiRequest {
  method: string;
  /** The path after /api/data/v9.2/, percent-decoded. */
  path: string;
  search: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
  /** This server's API root as the client addressed it (from Host), ending in '/'; links are built on it. */
  baseUrl: string;
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string>;
  body?: unknown;
  /** The request changed data, so a dropped answer is "a write that landed but whose answer was lost". */
  wrote: boolean;
}

const GUID = /^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$/;
/** Annotations this server puts on rows; a row read and written back may carry them, and they are not columns. */
const READ_ONLY_ANNOTATIONS = new Set(['@odata.etag', '@odata.context']);
/** Fixed ids for WhoAmI, which clients call to check a connection. */
const WHO_AM_I = {
  BusinessUnitId: '00000000-0000-0000-0000-0000000000b1',
  UserId: '00000000-0000-0000-0000-0000000000a1',
  OrganizationId: '00000000-0000-0000-0000-0000000000c1',
};

const json = (status: number, body: unknown, headers: Record<string, string> = {}, wrote = false): ApiResponse => ({
  status,
  headers,
  body,
  wrote,
});

export class WebApi {
  constructor(private readonly store: Store) {}

  /** Answers one request; a refusal is thrown as a DataverseError. */
  handle(request: ApiRequest): ApiResponse {
    const { method, path } = request;
    if (path === '') {
      if (method !== 'GET') throw errors.methodNotAllowed(method, 'the service document');
      return json(200, {
        '@odata.context': `${request.baseUrl}$metadata`,
        value: Object.keys(TABLES).map((name) => ({ name, kind: 'EntitySet', url: name })),
      });
    }
    const route = /^([^/()]+)(?:\(([^)]*)\))?(\/.*)?$/.exec(path);
    if (!route) throw errors.unknownSegment(path);
    const [, segment = '', key, rest] = route;
    if (segment === 'WhoAmI' && (key === undefined || key === '') && rest === undefined) {
      if (method !== 'GET') throw errors.methodNotAllowed(method, 'WhoAmI');
      return json(200, {
        '@odata.context': `${request.baseUrl}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse`,
        ...WHO_AM_I,
      });
    }
    if (segment === '$batch') {
      // dynamics-web-api sends a GET whose URL is over 2,000 characters as a $batch; keep $filter shorter.
      throw errors.notSupported('$batch');
    }
    if (segment === '$metadata') throw errors.notSupported('$metadata');
    if (!this.store.has(segment)) throw errors.unknownSegment(segment);
    if (rest !== undefined) throw errors.notSupported(`The path segment '${rest}'`);
    const table = segment;
    const query = parseQuery(request.search);
    const prefer = parsePrefer(request.headers.prefer);

    if (key === undefined) {
      if (method === 'GET') return this.readCollection(request, table, query, prefer);
      if (method === 'POST') return this.create(request, table, singleRowQuery(query), prefer);
      throw errors.methodNotAllowed(method, table);
    }
    const id = parseKey(key);
    singleRowQuery(query);
    if (method === 'GET') return this.retrieve(request, table, id, query);
    if (method === 'PATCH') return this.upsert(request, table, id, query, prefer);
    if (method === 'DELETE') return this.delete(request, table, id);
    throw errors.methodNotAllowed(method, `${table}(${id})`);
  }

  private retrieve(request: ApiRequest, table: string, id: string, query: QueryOptions): ApiResponse {
    const row = this.store.get(table, id);
    if (!row) throw errors.rowNotFound(table, id);
    const ifNoneMatch = header(request.headers, 'if-none-match');
    if (ifNoneMatch !== undefined && etagMatches(ifNoneMatch, row)) {
      return { status: 304, headers: { ETag: etagOf(row) }, wrote: false };
    }
    return json(
      200,
      {
        '@odata.context': context(request.baseUrl, table, query.select, '/$entity'),
        ...this.present(table, row, query.select),
      },
      { ETag: etagOf(row) },
    );
  }

  private create(request: ApiRequest, table: string, query: QueryOptions, prefer: Preferences): ApiResponse {
    const columns = parseBody(table, request.body);
    const keyColumn = this.store.keyOf(table);
    const given = columns[keyColumn];
    delete columns[keyColumn];
    let id: string;
    if (given === undefined || given === null) {
      id = randomUUID();
    } else {
      // A client-chosen id, e.g. a name-based UUID so that a retried create finds the row it made before.
      const match = typeof given === 'string' ? GUID.exec(given) : null;
      if (!match) throw errors.badPayload(table, `${keyColumn} must be a GUID, got ${JSON.stringify(given)}.`);
      id = match[1]!.toLowerCase();
      if (this.store.get(table, id)) throw errors.duplicateKey();
    }
    const row = this.store.create(table, id, columns);
    return this.written(request, table, row, 201, query, prefer);
  }

  /** PATCH is Dataverse's upsert: it updates, or creates the row under that id, unless If-Match / If-None-Match say otherwise. */
  private upsert(
    request: ApiRequest,
    table: string,
    id: string,
    query: QueryOptions,
    prefer: Preferences,
  ): ApiResponse {
    const columns = parseBody(table, request.body);
    const keyColumn = this.store.keyOf(table);
    if (columns[keyColumn] !== undefined) {
      const inBody = columns[keyColumn];
      if (typeof inBody !== 'string' || GUID.exec(inBody)?.[1]?.toLowerCase() !== id) {
        throw errors.badPayload(
          table,
          `${keyColumn} in the body (${JSON.stringify(inBody)}) is not the id in the URL.`,
        );
      }
      delete columns[keyColumn];
    }
    const existing = this.store.get(table, id);
    const ifMatch = header(request.headers, 'if-match');
    if (ifMatch !== undefined) {
      // If-Match: * prevents the create; an ETag also requires the row to be at that version.
      if (!existing) throw errors.rowNotFound(table, id);
      if (!etagMatches(ifMatch, existing)) throw errors.versionMismatch();
    }
    const ifNoneMatch = header(request.headers, 'if-none-match');
    // If-None-Match: * prevents the update.
    if (ifNoneMatch !== undefined && existing && etagMatches(ifNoneMatch, existing)) throw errors.duplicateKey();
    if (existing) return this.written(request, table, this.store.update(table, id, columns), 200, query, prefer);
    return this.written(request, table, this.store.create(table, id, columns), 201, query, prefer);
  }

  private delete(request: ApiRequest, table: string, id: string): ApiResponse {
    const existing = this.store.get(table, id);
    if (!existing) throw errors.rowNotFound(table, id);
    const ifMatch = header(request.headers, 'if-match');
    if (ifMatch !== undefined && !etagMatches(ifMatch, existing)) throw errors.versionMismatch();
    this.store.delete(table, id);
    return { status: 204, headers: {}, wrote: true };
  }

  /** The answer to a successful write: 204 and the row's URL, or the row itself with return=representation. */
  private written(
    request: ApiRequest,
    table: string,
    row: Row,
    statusWithRow: number,
    query: QueryOptions,
    prefer: Preferences,
  ): ApiResponse {
    const id = String(row[this.store.keyOf(table)]);
    const headers: Record<string, string> = {
      'OData-EntityId': `${request.baseUrl}${table}(${id})`,
      ETag: etagOf(row),
    };
    if (!prefer.returnRepresentation) return { status: 204, headers, wrote: true };
    headers['Preference-Applied'] = 'return=representation';
    const body = {
      '@odata.context': context(request.baseUrl, table, query.select, '/$entity'),
      ...this.present(table, row, query.select),
    };
    return json(statusWithRow, body, headers, true);
  }

  private readCollection(request: ApiRequest, table: string, query: QueryOptions, prefer: Preferences): ApiResponse {
    if (query.deltaToken !== undefined) return this.readChanges(request, table, query, prefer);
    const token = query.skipToken === undefined ? undefined : decodePageToken(query.skipToken);
    if (token?.kind === 'delta')
      throw errors.badQuery('This $skiptoken belongs to a delta link; it needs its $deltatoken.');
    const tracked = prefer.trackChanges || token?.upTo !== undefined;
    if (tracked) rejectTrackingOptions(query);
    // "Don't use $top with Prefer: odata.maxpagesize. If you include both, $top is ignored."
    const top = prefer.maxPageSize === undefined ? query.top : undefined;
    const pageSize = Math.min(prefer.maxPageSize ?? top ?? MAX_PAGE_SIZE, MAX_PAGE_SIZE);
    const upTo = token?.upTo ?? (tracked ? this.store.currentVersion() : undefined);
    if (token && token.after.length !== query.orderBy.length + 1) {
      throw errors.badQuery('The $skiptoken does not fit this $orderby; use @odata.nextLink as it was returned.');
    }

    const rows = this.page(table, query, token?.after, pageSize + 1);
    const more = top === undefined && rows.length > pageSize;
    const page = rows.slice(0, pageSize);
    const body: Record<string, unknown> = {
      '@odata.context': context(request.baseUrl, table, query.select),
      value: page.map((row) => this.present(table, row, query.select)),
    };
    const last = page.at(-1);
    if (more && last) {
      const next: PageToken = { kind: 'rows', after: this.sortKey(table, query, last), upTo };
      body['@odata.nextLink'] = link(request.baseUrl, table, [
        ['$select', query.raw.select],
        ['$filter', query.raw.filter],
        ['$orderby', query.raw.orderBy],
        ['$skiptoken', encodePageToken(next)],
      ]);
    } else if (upTo !== undefined) {
      body['@odata.deltaLink'] = this.deltaLink(request, table, query, upTo);
    }
    return json(200, body, preferenceApplied(prefer, tracked));
  }

  /** Rows after `after` (a sort key) that pass $filter, in $orderby order (primary key by default), up to `limit`. */
  private page(table: string, query: QueryOptions, after: ColumnValue[] | undefined, limit: number): Row[] {
    const found: Row[] = [];
    if (query.orderBy.length === 0) {
      const ids = this.store.sortedIds(table);
      let start = 0;
      if (after) {
        const last = String(after[0]);
        start = firstIndex(ids.length, (i) => ids[i]! > last);
      }
      for (let i = start; i < ids.length && found.length < limit; i++) {
        const row = this.store.get(table, ids[i]!)!;
        if (!query.filter || matches(query.filter, row)) found.push(row);
      }
      return found;
    }
    const keyed = [...this.store.rowsInChangeOrder(table)]
      .filter((row) => !query.filter || matches(query.filter, row))
      .map((row) => ({ row, key: this.sortKey(table, query, row) }))
      .sort((a, b) => compareKeys(a.key, b.key, query.orderBy));
    const start = after ? firstIndex(keyed.length, (i) => compareKeys(keyed[i]!.key, after, query.orderBy) > 0) : 0;
    return keyed.slice(start, start + limit).map(({ row }) => row);
  }

  private sortKey(table: string, query: QueryOptions, row: Row): ColumnValue[] {
    return [...query.orderBy.map(({ column }) => columnOf(row, column)), columnOf(row, this.store.keyOf(table))];
  }

  /**
   * A delta link's answer: rows created or changed since its token with their current values, each once in the
   * order of its latest change, then rows deleted since (as Dataverse orders them), paged like any collection.
   * Every page answers "since the token, up to the version when the first page was read", so a write while the
   * client pages is not half-seen: it comes with the next delta link.
   */
  private readChanges(request: ApiRequest, table: string, query: QueryOptions, prefer: Preferences): ApiResponse {
    rejectTrackingOptions(query);
    const deltaToken = query.deltaToken!;
    const since = Number(/^(\d+)!/.exec(deltaToken)?.[1] ?? NaN);
    const state = this.store.deltaTokenState(since);
    if (state === 'expired') throw errors.deltaTokenExpired();
    if (state === 'unknown') throw errors.invalidDeltaToken(deltaToken);
    const token = query.skipToken === undefined ? undefined : decodePageToken(query.skipToken);
    if (token !== undefined && token.kind !== 'delta')
      throw errors.badQuery('This $skiptoken does not belong to a delta link.');
    const { upTo, phase, after } = token ?? { upTo: this.store.currentVersion(), phase: 'changed', after: since };
    const pageSize = prefer.maxPageSize ?? MAX_PAGE_SIZE;

    type Change = { phase: 'changed'; version: number; row: Row } | { phase: 'deleted'; version: number; id: string };
    const changes: Change[] = [];
    if (phase === 'changed') {
      for (const row of this.store.rowsInChangeOrder(table)) {
        const version = Number(row.versionnumber);
        if (version > upTo || changes.length > pageSize) break;
        if (version > after) changes.push({ phase: 'changed', version, row });
      }
    }
    const deletedAfter = phase === 'deleted' ? after : since;
    for (const [id, version] of this.store.deletions(table)) {
      if (version > upTo || changes.length > pageSize) break;
      if (version > deletedAfter) changes.push({ phase: 'deleted', version, id });
    }

    const more = changes.length > pageSize;
    const page = changes.slice(0, pageSize);
    const deletedContext = `${request.baseUrl}$metadata#${table}/$deletedEntity`;
    const body: Record<string, unknown> = {
      '@odata.context': context(request.baseUrl, table, query.select, '/$delta'),
      value: page.map((change) =>
        change.phase === 'changed'
          ? this.present(table, change.row, query.select)
          : { '@odata.context': deletedContext, id: change.id, reason: 'deleted' },
      ),
    };
    const last = page.at(-1);
    if (more && last) {
      const next: PageToken = { kind: 'delta', upTo, phase: last.phase, after: last.version };
      body['@odata.nextLink'] = link(request.baseUrl, table, [
        ['$select', query.raw.select],
        ['$deltatoken', deltaToken],
        ['$skiptoken', encodePageToken(next)],
      ]);
    } else {
      body['@odata.deltaLink'] = this.deltaLink(request, table, query, upTo);
    }
    return json(200, body, preferenceApplied(prefer, prefer.trackChanges));
  }

  /** Like Dataverse's `919042!08/22/2017 08:10:44`: the version the next delta starts after, and when. */
  private deltaLink(request: ApiRequest, table: string, query: QueryOptions, upTo: number): string {
    const token = `${upTo}!${new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')}`;
    return link(request.baseUrl, table, [
      ['$select', query.raw.select],
      ['$deltatoken', token],
    ]);
  }

  /** A row as the Web API returns it: its ETag, then the selected columns (null when unset) and its key. */
  private present(table: string, row: Row, select: string[] | undefined): Record<string, unknown> {
    const out: Record<string, unknown> = { '@odata.etag': etagOf(row) };
    if (!select) return Object.assign(out, row);
    for (const column of select) out[column] = columnOf(row, column);
    const keyColumn = this.store.keyOf(table);
    out[keyColumn] = row[keyColumn];
    return out;
  }
}

/** A single-row request takes $select only. */
function singleRowQuery(query: QueryOptions): QueryOptions {
  for (const [name, value] of [
    ['$filter', query.filter],
    ['$orderby', query.raw.orderBy],
    ['$top', query.top],
    ['$skiptoken', query.skipToken],
    ['$deltatoken', query.deltaToken],
  ] as const) {
    if (value !== undefined) throw errors.badQuery(`${name} applies to a collection, not to a single row.`);
  }
  return query;
}

/** "Query options not supported in Change Tracking Web API request", with Dataverse's message. */
function rejectTrackingOptions(query: QueryOptions): void {
  for (const [name, value] of [
    ['filter', query.filter],
    ['orderby', query.raw.orderBy],
    ['top', query.top],
  ] as const) {
    if (value !== undefined) {
      throw errors.badQuery(`The "$${name}" query parameter isn't supported when Change Tracking is enabled.`);
    }
  }
}

function parseKey(key: string): string {
  const match = GUID.exec(key);
  if (match) return match[1]!.toLowerCase();
  if (key.includes('=')) throw errors.notSupported('Addressing a row by an alternate key');
  throw errors.badQuery(`Bad Request - Error in query syntax: '${key}' is not a GUID.`);
}

/** The columns of a write, checked in full before anything is written. */
function parseBody(table: string, text: string): Row {
  if (text.trim() === '') throw errors.badPayload(table, 'The body is empty; a JSON object of columns was expected.');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw errors.badPayload(
      table,
      `The body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw errors.badPayload(table, 'The body must be a JSON object of columns.');
  }
  const columns: Row = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (READ_ONLY_ANNOTATIONS.has(name)) continue;
    if (!isColumnName(name)) {
      throw errors.badPayload(
        table,
        `'${name}' is not a column name the development Dataverse supports (lower-case letters, digits and _; ` +
          'no navigation properties or @odata.bind).',
      );
    }
    const valid =
      value === null ||
      typeof value === 'string' ||
      typeof value === 'boolean' ||
      (typeof value === 'number' && Number.isFinite(value));
    if (!valid) throw errors.badPayload(table, `The value of '${name}' must be text, a number, true, false or null.`);
    if (!SERVER_COLUMNS.has(name)) columns[name] = value as ColumnValue;
  }
  return columns;
}

const etagOf = (row: Row) => `W/"${String(row.versionnumber)}"`;

/** If-Match / If-None-Match: `*` or a list of (weak or strong) ETags, compared by value. */
function etagMatches(headerValue: string, row: Row): boolean {
  const current = String(row.versionnumber);
  return headerValue.split(',').some((tag) => {
    const trimmed = tag.trim();
    return trimmed === '*' || trimmed.replace(/^W\//, '').replace(/^"(.*)"$/, '$1') === current;
  });
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function context(baseUrl: string, table: string, select: string[] | undefined, suffix = ''): string {
  return `${baseUrl}$metadata#${table}${select ? `(${select.join(',')})` : ''}${suffix}`;
}

function preferenceApplied(prefer: Preferences, tracked: boolean): Record<string, string> {
  const applied = [
    ...(prefer.maxPageSize !== undefined ? [`odata.maxpagesize=${prefer.maxPageSize}`] : []),
    ...(tracked ? ['odata.track-changes'] : []),
  ];
  return applied.length ? { 'Preference-Applied': applied.join(',') } : {};
}

/** An absolute link on this server; commas stay readable in $select. */
function link(baseUrl: string, table: string, options: [string, string | undefined][]): string {
  const query = options
    .filter((option): option is [string, string] => option[1] !== undefined)
    .map(([name, value]) => `${name}=${encodeURIComponent(value).replace(/%2C/g, ',')}`)
    .join('&');
  return `${baseUrl}${table}${query ? `?${query}` : ''}`;
}

/** The first index in [0, length) for which `after` holds, given it holds for a suffix (binary search). */
function firstIndex(length: number, after: (index: number) => boolean): number {
  let low = 0;
  let high = length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (after(middle)) high = middle;
    else low = middle + 1;
  }
  return low;
}
