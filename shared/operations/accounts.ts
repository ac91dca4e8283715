import { randomBytes } from 'node:crypto';

import { DomainError } from '../domain/errors';
import type { CustomerRecord } from '../domain/operation';
import type { Store } from '../storage';
import { isCustomerAccount } from '../storage/accounts';
import type { Versioned } from '../storage/customer-store';

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

/**
 * The customer record holding an account (async or real), or CUSTOMER_NOT_FOUND. The record must really hold
 * the account: an index entry left by a crashed create points at a customer that got another number.
 */
export async function findCustomer(store: Store, account: string): Promise<Versioned<CustomerRecord>> {
  const key = isAsyncCustomerAccount(account)
    ? account
    : isCustomerAccount(account)
      ? await store.accounts.customerKeyOf(account)
      : undefined;
  const record = key === undefined ? undefined : await store.customers.getRecord(key);
  if (!record || (record.value.asyncCustomerAccount !== account && record.value.customerAccount !== account)) {
    throw new DomainError('CUSTOMER_NOT_FOUND', `No customer has the account '${account}'.`);
  }
  return record;
}
