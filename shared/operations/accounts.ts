import { randomBytes } from 'node:crypto';

import { DomainError } from '../domain/errors';
import type { Store } from '../storage';
import { isCustomerAccount } from '../storage/accounts';

// Crockford's base32: no I, L, O, U, so an account read aloud or typed at a till is unambiguous.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const ASYNC_PREFIX = 'ASYNC-';

/** A temporary account a channel can use at once; 50 random bits make collisions negligible (and checked). */
export function newAsyncCustomerAccount(): string {
  const bytes = randomBytes(10);
  let out = ASYNC_PREFIX;
  for (const b of bytes) out += ALPHABET[b & 31];
  return out;
}

export const isAsyncCustomerAccount = (account: string) => /^ASYNC-[0-9A-Z]{10}$/.test(account);

/** Either account of a customer → its customer key (the partition holding it), or CUSTOMER_NOT_FOUND. */
export async function resolveCustomerKey(store: Store, account: string): Promise<string> {
  const key = isAsyncCustomerAccount(account)
    ? account
    : isCustomerAccount(account)
      ? await store.accounts.customerKeyOf(account)
      : undefined;
  if (!key) throw new DomainError('CUSTOMER_NOT_FOUND', `No customer has the account '${account}'.`);
  return key;
}
