import { randomBytes } from 'node:crypto';

import { z } from 'zod';

/**
 * The two account numbers a customer has. The async customer account is given at submit time and never
 * changes, so it is also the customer key: the service's permanent id of the customer (its partition, the
 * prefix of its operation ids). The customer account is HQ's number, given when the create is applied.
 */

// Crockford's base32: no I, L, O, U, so an account read aloud or typed at a till is unambiguous.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ASYNC_PREFIX = 'ASYNC-';

/** A temporary account a channel can use at once; 50 random bits make collisions negligible (and checked). */
export function newAsyncCustomerAccount(): string {
  let out = ASYNC_PREFIX;
  for (const b of randomBytes(10)) out += ALPHABET[b & 31];
  return out;
}

export const isAsyncCustomerAccount = (account: string) => /^ASYNC-[0-9A-Z]{10}$/.test(account);

/** Either account as a client writes it: checked for shape only (whether it exists is a lookup). */
export const accountSchema = z.string().regex(/^[A-Z0-9][A-Z0-9-]{0,63}$/, 'is not an account number');

export const formatCustomerAccount = (n: number) => `C${String(n).padStart(9, '0')}`;
export const isCustomerAccount = (account: string) => /^C\d{9,}$/.test(account);
