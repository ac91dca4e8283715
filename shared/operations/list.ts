import { z } from 'zod';

import { DomainError } from '../domain/errors';
import { type OperationSummary, summaryOf } from '../domain/operation';
import type { IndexQuery } from '../domain/ports';
import { findCustomer } from './accounts';
import type { SyncContext } from './context';
import { filterFingerprint, matches, type OperationFilter } from './filter';

/** A field filter with nothing but time to bound it spans at most (and by default) this many days. */
const FIELD_WINDOW_DAYS = 31;
const DAY_MS = 86_400_000;
/** Most operations read from the Customers table at once when listing one customer's operations. */
const READ_AHEAD = 100;
/**
 * Most operations one per-customer request reads. A sparse filter (say, status=Pending) stops there and
 * answers with fewer than `top` items and a continuation token, rather than reading without limit.
 */
const READ_BUDGET = 2000;
/** The longest window a query may span; longer than the retention period on purpose. */
const MAX_WINDOW_DAYS = 400;

export interface OperationPage {
  items: OperationSummary[];
  continuationToken?: string;
}

/**
 * Where a query continues. `customer`: the customer's operations below `seq`; `index`: the operation index's
 * position (an hour, or '' for the failed index, and the last RowKey read). Tokens carry the filter's
 * fingerprint so a token cannot be replayed against another filter (which would silently skip or repeat items).
 */
const tokenSchema = z.discriminatedUnion('d', [
  z.object({ d: z.literal('customer'), f: z.string(), seq: z.number().int().min(0) }),
  z.object({
    d: z.literal('index'),
    f: z.string(),
    hour: z.string().regex(/^(\d{10})?$/),
    rk: z.string().max(200),
    span: z.number().int().min(0).max(3_600_000).optional(),
  }),
]);
type Token = z.infer<typeof tokenSchema>;

/**
 * One page of operations, newest first. The query is driven by its most selective indexed filter: a customer
 * account (that customer's partition), else the operation index (the failed index for status=Failed, else the
 * hours of the window), where every other filter is evaluated by the service.
 */
export async function listOperations(
  ctx: SyncContext,
  filter: OperationFilter,
  top: number,
  continuationToken?: string,
): Promise<OperationPage> {
  const fingerprint = filterFingerprint(filter);
  const token = continuationToken === undefined ? undefined : decodeToken(continuationToken, fingerprint);
  let page: { items: OperationSummary[]; next?: Token };
  if (filter.customerAccount || filter.asyncCustomerAccount) {
    if (token && token.d !== 'customer') throw invalidToken();
    page = await customerPage(ctx, filter, top, fingerprint, token?.seq);
  } else {
    if (token && token.d !== 'index') throw invalidToken();
    const failed = filter.status === 'Failed';
    const query: IndexQuery = {
      failed,
      // The failed index holds only current failures, however old: no default window there.
      ...(failed ? { from: filter.from, to: filter.to } : timeWindow(ctx, filter)),
      type: filter.type,
      channel: filter.channel,
      code: filter.code,
      ...(failed ? {} : { status: filter.status }),
      fields: filter.fields,
    };
    const position = token && { hour: token.hour, rowKey: token.rk, spanMs: token.span };
    const found = await ctx.store.operationIndex.page(query, top, position);
    if (!found) throw invalidToken();
    const { next } = found;
    page = {
      items: found.items,
      ...(next ? { next: { d: 'index', f: fingerprint, hour: next.hour, rk: next.rowKey, span: next.spanMs } } : {}),
    };
  }
  return {
    items: page.items,
    ...(page.next ? { continuationToken: Buffer.from(JSON.stringify(page.next)).toString('base64url') } : {}),
  };
}

/** One customer's operations below `below` (a sequence number), newest first, read from its partition. */
async function customerPage(
  ctx: SyncContext,
  filter: OperationFilter,
  top: number,
  fingerprint: string,
  below?: number,
): Promise<{ items: OperationSummary[]; next?: Token }> {
  const items: OperationSummary[] = [];
  const customerKey = await customerKeyOf(ctx, filter);
  if (customerKey === undefined) return { items };
  const record = await ctx.store.customers.getRecord(customerKey);
  const newest = (record?.value.nextSeq ?? 1) - 1;
  let seq = below === undefined ? newest : Math.min(below, newest);
  let budget = READ_BUDGET;
  while (seq >= 1 && items.length < top && budget > 0) {
    budget -= READ_AHEAD;
    const seqs = Array.from({ length: Math.min(READ_AHEAD, seq) }, (_, i) => seq - i);
    const ops = await Promise.all(seqs.map((s) => ctx.store.customers.getOperationHead(customerKey, s)));
    for (const [i, op] of ops.entries()) {
      seq = seqs[i]! - 1;
      if (op && matches(op, filter, customerKey)) items.push(summaryOf(op));
      if (items.length === top) break;
    }
  }
  return { items, ...(seq >= 1 ? { next: { d: 'customer', f: fingerprint, seq } } : {}) };
}

/** Every operation matching the filter, newest first, page by page (for exports and bulk actions). */
export async function* allOperations(
  ctx: SyncContext,
  filter: OperationFilter,
  pageSize = 500,
): AsyncIterable<OperationSummary> {
  let token: string | undefined;
  do {
    const page = await listOperations(ctx, filter, pageSize, token);
    yield* page.items;
    token = page.continuationToken;
  } while (token);
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
  // Without `from`, a listing looks back as far as audit data is kept (within the longest window).
  const defaultDays = fieldOnly ? FIELD_WINDOW_DAYS : Math.min(ctx.retentionDays, MAX_WINDOW_DAYS);
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
