import { z } from 'zod';

import { DomainError } from '../domain/errors';
import type { ListedOperation } from '../domain/operation';
import { hourOf, type IndexEntry, type IndexQuery, isHour } from '../storage/operation-index';
import { findCustomer } from './accounts';
import type { SyncContext } from './context';
import { filterFingerprint, matches, type OperationFilter } from './filter';

/** How far back a query without `from` looks: the audit retention period. */
export const DEFAULT_WINDOW_DAYS = 90;
/** A field filter with nothing but time to bound it spans at most (and by default) this many days. */
export const FIELD_WINDOW_DAYS = 31;
const DAY_MS = 86_400_000;
/** Most operations read from the Customers table at once when checking index candidates. */
const READ_AHEAD = 100;
/**
 * Most operations one request reads. A sparse filter (say, status=Pending over 90 days) stops there and
 * answers with fewer than `top` items and a continuation token, rather than reading without limit.
 */
const READ_BUDGET = 2000;
/**
 * Most hour tables one request reads. A sparse filter over a long window stops there and answers with what
 * it found and a continuation token for the next hour, rather than querying every hour of 90 days at once.
 */
const HOUR_BUDGET = 48;
/** The longest window a query may span; longer than the retention period on purpose. */
const MAX_WINDOW_DAYS = 400;

export interface OperationPage {
  items: ListedOperation[];
  continuationToken?: string;
}

/**
 * Where a query continues. `customer`: the customer's operations below `seq`; `index`: the hour table (or the
 * failed index, hour '') and the last RowKey consumed. Tokens carry the filter's fingerprint so a token cannot be
 * replayed against another filter (which would silently skip or repeat items).
 */
const tokenSchema = z.discriminatedUnion('d', [
  z.object({ d: z.literal('customer'), f: z.string(), seq: z.number().int().min(0) }),
  z.object({ d: z.literal('index'), f: z.string(), hour: z.string().regex(/^(\d{10})?$/), rk: z.string().max(200) }),
]);
type Token = z.infer<typeof tokenSchema>;

/**
 * One page of operations, newest first. The query is driven by its most selective indexed filter:
 * a customer account (that customer's partition), status=Failed (the failed index), else the per-hour index
 * (the channel's partitions when a channel is given), walking the hours that have a table from `to` back to
 * `from`; index entries are the list items, every filter evaluated by the service.
 */
export async function listOperations(
  ctx: SyncContext,
  filter: OperationFilter,
  top: number,
  continuationToken?: string,
): Promise<OperationPage> {
  await ctx.store.tables.ensureCreated();
  const fingerprint = filterFingerprint(filter);
  const token = continuationToken === undefined ? undefined : decodeToken(continuationToken, fingerprint);
  const items: ListedOperation[] = [];
  let next: Token | undefined;

  if (filter.customerAccount || filter.asyncCustomerAccount) {
    const customerKey = await customerKeyOf(ctx, filter);
    if (customerKey === undefined) return { items };
    const record = await ctx.store.customers.getRecord(customerKey);
    const newest = (record?.value.nextSeq ?? 1) - 1;
    let seq = token?.d === 'customer' ? Math.min(token.seq, newest) : newest;
    let budget = READ_BUDGET;
    while (seq >= 1 && items.length < top && budget > 0) {
      budget -= READ_AHEAD;
      const seqs = Array.from({ length: Math.min(READ_AHEAD, seq) }, (_, i) => seq - i);
      const ops = await Promise.all(seqs.map((s) => ctx.store.customers.getOperationSummary(customerKey, s)));
      for (const [i, op] of ops.entries()) {
        seq = seqs[i]! - 1;
        if (op && matches(op, filter, customerKey)) items.push(op);
        if (items.length === top) break;
      }
    }
    if (seq >= 1) next = { d: 'customer', f: fingerprint, seq };
  } else {
    const failedIndex = filter.status === 'Failed';
    const window = timeWindow(ctx, filter);
    const query: IndexQuery = {
      // The failed index holds only current failures, however old: no default window there.
      ...(failedIndex ? { from: filter.from, to: filter.to } : window),
      type: filter.type,
      channel: filter.channel,
      code: filter.code,
      ...(failedIndex ? {} : { status: filter.status }),
      fields: filter.fields,
    };
    const resume = token?.d === 'index' ? token : undefined;
    if (resume && (failedIndex ? resume.hour !== '' : !inWindow(resume.hour, window))) throw invalidToken();
    // A resumed query goes on from its token's hour (or the next older one, if retention dropped it).
    const hours = failedIndex ? [''] : ctx.store.operationIndex.hoursBetween(window.from, resume?.hour || window.to);
    let visited = 0;
    for await (const hour of hours) {
      if (++visited > HOUR_BUDGET) {
        next = { d: 'index', f: fingerprint, hour, rk: '' }; // that hour, from its start
        break;
      }
      const after = resume?.hour === hour && resume.rk ? resume.rk : undefined;
      // Fetch as many index entries per request as the page still needs items: every entry costs a read.
      const hourQuery = { ...query, after, pageSize: top - items.length };
      const entries =
        hour === '' ? ctx.store.operationIndex.failed(hourQuery) : ctx.store.operationIndex.hour(hour, hourQuery);
      const last = await take(entries, top, items);
      if (last !== undefined) {
        next = { d: 'index', f: fingerprint, hour, rk: last };
        break;
      }
    }
  }
  return { items, ...(next ? { continuationToken: Buffer.from(JSON.stringify(next)).toString('base64url') } : {}) };
}

/** Every operation matching the filter, newest first, page by page (for exports and bulk actions). */
export async function* allOperations(
  ctx: SyncContext,
  filter: OperationFilter,
  pageSize = 500,
): AsyncIterable<ListedOperation> {
  let token: string | undefined;
  do {
    const page = await listOperations(ctx, filter, pageSize, token);
    yield* page.items;
    token = page.continuationToken;
  } while (token);
}

/** Index entries are the items: takes them up to `top`; the RowKey of the one that filled the page. */
async function take(entries: AsyncIterable<IndexEntry>, top: number, items: ListedOperation[]) {
  for await (const entry of entries) {
    items.push(entry.item);
    if (items.length === top) return entry.rowKey;
  }
  return undefined;
}

async function customerKeyOf(ctx: SyncContext, filter: OperationFilter): Promise<string | undefined> {
  const keys = new Set<string>();
  for (const account of [filter.customerAccount, filter.asyncCustomerAccount]) {
    if (!account) continue;
    try {
      keys.add((await findCustomer(ctx.store, account)).value.customerKey);
    } catch (error) {
      if (error instanceof DomainError && error.code === 'CUSTOMER_NOT_FOUND') return undefined;
      throw error;
    }
  }
  // Both accounts given but of different customers: nothing can match.
  return keys.size === 1 ? [...keys][0] : undefined;
}

function timeWindow(ctx: SyncContext, filter: OperationFilter): { from: string; to: string } {
  const to = filter.to ?? ctx.clock().toISOString();
  const fieldOnly = filter.fields.length > 0 && filter.status !== 'Failed' && filter.channel === undefined;
  const defaultDays = fieldOnly ? FIELD_WINDOW_DAYS : DEFAULT_WINDOW_DAYS;
  const from = filter.from ?? new Date(Date.parse(to) - defaultDays * DAY_MS).toISOString();
  if (Date.parse(to) - Date.parse(from) > MAX_WINDOW_DAYS * DAY_MS) {
    throw new DomainError('VALIDATION_FAILED', `A time window may span at most ${MAX_WINDOW_DAYS} days.`, {
      from: [`must be at most ${MAX_WINDOW_DAYS} days before to`],
    });
  }
  if (fieldOnly && Date.parse(to) - Date.parse(from) > FIELD_WINDOW_DAYS * DAY_MS) {
    throw new DomainError(
      'VALIDATION_FAILED',
      `A field filter needs a time window of at most ${FIELD_WINDOW_DAYS} days (from/to), or a channel, ` +
        'a customer account or status=Failed to bound it.',
      { from: [`must be at most ${FIELD_WINDOW_DAYS} days before to when filtering on a field alone`] },
    );
  }
  return { from, to };
}

/** Whether a token's hour is a real hour inside the query's window (a forged one could be anything). */
const inWindow = (hour: string, window: { from: string; to: string }) =>
  isHour(hour) && hour >= hourOf(window.from) && hour <= hourOf(window.to);

function decodeToken(value: string, fingerprint: string): Token {
  let token: Token;
  try {
    token = tokenSchema.parse(JSON.parse(Buffer.from(value, 'base64url').toString('utf8')));
  } catch {
    throw invalidToken();
  }
  if (token.f !== fingerprint) throw invalidToken('it was issued for different filters');
  return token;
}

const invalidToken = (why = 'it is not one this API issued') =>
  new DomainError('VALIDATION_FAILED', `The continuationToken is not valid: ${why}.`, {
    continuationToken: [`is not valid: ${why}`],
  });
