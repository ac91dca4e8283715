/**
 * Query options, Prefer preferences and paging tokens: everything about a request's URL and headers that decides
 * which rows an answer holds, parsed and checked before any row is looked at, so a malformed or unsupported
 * query is a 400 (or 501) naming the option instead of an answer that silently ignores it.
 */
import { errors } from './errors';
import { compareValues, type FilterExpression, FilterSyntaxError, parseFilter } from './filter';
import { type ColumnValue, isColumnName } from './store';

export interface OrderBy {
  column: string;
  descending: boolean;
}

export interface QueryOptions {
  select?: string[];
  filter?: FilterExpression;
  orderBy: OrderBy[];
  top?: number;
  skipToken?: string;
  deltaToken?: string;
  /** The options as they came, for the next and delta links, which must repeat them. */
  raw: { select?: string; filter?: string; orderBy?: string };
}

const UNSUPPORTED: Record<string, string> = {
  $expand: '$expand',
  $count: '$count',
  $apply: '$apply (aggregation)',
  fetchXml: 'FetchXML',
  savedQuery: 'savedQuery',
  userQuery: 'userQuery',
  $search: '$search',
};

export function parseQuery(search: URLSearchParams): QueryOptions {
  const seen = new Set<string>();
  for (const name of search.keys()) {
    if (seen.has(name)) throw errors.badQuery(`The query option '${name}' appears more than once.`);
    seen.add(name);
    if (name in UNSUPPORTED) throw errors.notSupported(`The query option ${UNSUPPORTED[name]}`);
    if (name === '$skip') {
      // As in Dataverse, which pages with Prefer: odata.maxpagesize and @odata.nextLink instead.
      throw errors.badQuery('The query parameter $skip is not supported.');
    }
    if (!['$select', '$filter', '$orderby', '$top', '$skiptoken', '$deltatoken'].includes(name)) {
      throw errors.badQuery(`The query parameter ${name} is not supported.`);
    }
  }
  const raw = {
    select: search.get('$select') ?? undefined,
    filter: search.get('$filter') ?? undefined,
    orderBy: search.get('$orderby') ?? undefined,
  };
  const options: QueryOptions = { orderBy: [], raw };
  if (raw.select !== undefined) options.select = parseSelect(raw.select);
  if (raw.filter !== undefined) {
    try {
      options.filter = parseFilter(raw.filter);
    } catch (error) {
      if (error instanceof FilterSyntaxError) throw errors.badQuery(`$filter: ${error.message}`);
      throw error;
    }
  }
  if (raw.orderBy !== undefined) options.orderBy = parseOrderBy(raw.orderBy);
  const top = search.get('$top');
  if (top !== null) {
    if (!/^\d+$/.test(top) || Number(top) < 1) throw errors.badQuery(`$top must be a positive integer, got '${top}'.`);
    options.top = Number(top);
  }
  options.skipToken = search.get('$skiptoken') ?? undefined;
  options.deltaToken = search.get('$deltatoken') ?? undefined;
  return options;
}

export function parseSelect(text: string): string[] {
  const columns = text.split(',').map((column) => column.trim());
  for (const column of columns) {
    if (!isColumnName(column)) {
      throw errors.badQuery(
        `$select: '${column}' is not a column name the development Dataverse supports (lower-case letters, digits and _).`,
      );
    }
  }
  return [...new Set(columns)];
}

function parseOrderBy(text: string): OrderBy[] {
  return text.split(',').map((clause) => {
    const match = /^\s*([a-z0-9_]+)(?:\s+(asc|desc))?\s*$/.exec(clause);
    if (!match || !isColumnName(match[1]!))
      throw errors.badQuery(`$orderby: '${clause.trim()}' is not '<column> [asc|desc]'.`);
    return { column: match[1]!, descending: match[2] === 'desc' };
  });
}

export interface Preferences {
  returnRepresentation: boolean;
  trackChanges: boolean;
  maxPageSize?: number;
}

/** Dataverse never returns more than this many rows in one answer ("Page results using OData"). */
export const MAX_PAGE_SIZE = 5000;

export function parsePrefer(header: string | string[] | undefined): Preferences {
  const preferences: Preferences = { returnRepresentation: false, trackChanges: false };
  const values = Array.isArray(header) ? header.join(',') : (header ?? '');
  for (const item of values.split(',').map((part) => part.trim())) {
    if (item === 'return=representation') preferences.returnRepresentation = true;
    else if (item === 'odata.track-changes') preferences.trackChanges = true;
    else if (item.startsWith('odata.maxpagesize=')) {
      const size = Number(item.slice('odata.maxpagesize='.length).replace(/"/g, ''));
      // A preference the server cannot honour is not applied (and not echoed in Preference-Applied).
      if (Number.isInteger(size) && size > 0) preferences.maxPageSize = Math.min(size, MAX_PAGE_SIZE);
    }
    // Anything else (odata.include-annotations, …) is a preference this server does not apply.
  }
  return preferences;
}

/**
 * Where the next page starts, carried opaquely in `$skiptoken`. A collection page remembers the sort key of its
 * last row (keyset paging: rows added or removed meanwhile neither repeat nor get skipped); a tracked read also
 * remembers the version its delta link will carry. A delta page remembers the version of its last change.
 */
export type PageToken =
  | { kind: 'rows'; after: ColumnValue[]; upTo?: number }
  | { kind: 'delta'; upTo: number; phase: 'changed' | 'deleted'; after: number };

export function encodePageToken(token: PageToken): string {
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

export function decodePageToken(text: string): PageToken {
  let token: unknown;
  try {
    token = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    token = undefined;
  }
  if (isPageToken(token)) return token;
  throw errors.badQuery('The $skiptoken was not issued by this server; use @odata.nextLink as it was returned.');
}

function isPageToken(value: unknown): value is PageToken {
  if (typeof value !== 'object' || value === null) return false;
  const token = value as Record<string, unknown>;
  if (token.kind === 'rows') {
    return (
      Array.isArray(token.after) &&
      token.after.every((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v)) &&
      (token.upTo === undefined || Number.isSafeInteger(token.upTo))
    );
  }
  return (
    token.kind === 'delta' &&
    Number.isSafeInteger(token.upTo) &&
    Number.isSafeInteger(token.after) &&
    (token.phase === 'changed' || token.phase === 'deleted')
  );
}

/** null sorts first, as in SQL Server; values of different types by type, so the order is always total. */
const TYPE_RANK: Record<string, number> = { object: 0, boolean: 1, number: 2, string: 3 };

function compareSortValues(a: ColumnValue, b: ColumnValue): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  return compareValues(a, b) ?? TYPE_RANK[typeof a]! - TYPE_RANK[typeof b]!;
}

/** Compares sort keys: the $orderby columns, then the primary key (ascending) to break ties. */
export function compareKeys(a: readonly ColumnValue[], b: readonly ColumnValue[], orderBy: readonly OrderBy[]): number {
  for (let i = 0; i < orderBy.length; i++) {
    const order = compareSortValues(a[i] ?? null, b[i] ?? null);
    if (order !== 0) return orderBy[i]!.descending ? -order : order;
  }
  const ida = a[orderBy.length];
  const idb = b[orderBy.length];
  return ida === idb ? 0 : String(ida) < String(idb) ? -1 : 1;
}
