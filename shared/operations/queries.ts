import { z } from 'zod';

import { DomainError, notFound } from '../domain/errors';
import { type Operation, parseOperationId } from '../domain/operation';
import type { DeadLetter, FeedItem, FeedPage } from '../domain/ports';
import type { Versioned } from '../domain/versioned';
import { customerDeleted, findCustomer } from './accounts';
import type { SyncContext } from './context';

export async function getOperation(ctx: SyncContext, operationId: string): Promise<Versioned<Operation>> {
  const id = parseOperationId(operationId);
  const found = id && (await ctx.store.customers.getOperation(id.customerKey, id.seq));
  if (!found) throw notFound('Operation', operationId, 'OPERATION_NOT_FOUND');
  return found;
}

export async function getCustomer(ctx: SyncContext, account: string) {
  const { value: r } = await findCustomer(ctx.store, account);
  if (r.deleted) throw customerDeleted(account);
  // Present only once the create is applied.
  if (!r.customer || !r.customerAccount) throw notFound('Customer', account, 'CUSTOMER_NOT_FOUND');
  return {
    customerAccount: r.customerAccount,
    ...(r.asyncCustomerAccount ? { asyncCustomerAccount: r.asyncCustomerAccount } : {}),
    customer: r.customer,
    version: r.version,
  };
}

/** Entries younger than this are held back too, which covers clock skew between processor instances. */
const FEED_SETTLE_MS = 1000;
const FEED_PAGE_SIZE = 500;

/** A cursor is the feed RowKey read last (or the cutoff a page ended at). */
const cursorSchema = z.strictObject({ after: z.string().max(512) });

export async function readCustomerUpdates(
  ctx: SyncContext,
  cursor: string | undefined,
): Promise<{ items: FeedItem[]; cursor: string }> {
  const after = cursor === undefined ? undefined : decodeCursor(cursor);
  // Never read past a round that has stamped feed times but not written its entries yet.
  const settled = new Date(ctx.clock().getTime() - FEED_SETTLE_MS).toISOString();
  const inFlight = await ctx.store.feedInFlight.oldest();
  const cutoff = inFlight !== undefined && inFlight < settled ? inFlight : settled;
  const page = await ctx.store.feed.read(after, cutoff, FEED_PAGE_SIZE);
  return { items: page.items, cursor: encodeCursor(page.cursor) };
}

const encodeCursor = (after: FeedPage['cursor']) =>
  Buffer.from(JSON.stringify({ after: after ?? '' })).toString('base64url');

function decodeCursor(cursor: string): FeedPage['cursor'] {
  try {
    const { after } = cursorSchema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    return after === '' ? undefined : after;
  } catch {
    throw new DomainError('VALIDATION_FAILED', 'The cursor is not one this feed returned.', {
      cursor: ['is not a valid cursor'],
    });
  }
}

/** The newest `top` queue messages refused as not doorbells. */
export const listDeadLetters = (ctx: SyncContext, top: number): Promise<DeadLetter[]> =>
  ctx.store.deadLetters.latest(top);
