import { isAsyncCustomerAccount, isCustomerAccount } from '../domain/accounts';
import { DomainError } from '../domain/errors';
import type { CustomerRecord } from '../domain/operation';
import type { Store } from '../domain/ports';
import type { Versioned } from '../domain/versioned';

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

/**
 * A deleted customer is not found (its record stays for the audit trail and a restore). NOT_FOUND rather than
 * CUSTOMER_NOT_FOUND: the account is known, what it named is gone.
 */
export const customerDeleted = (account: string) =>
  new DomainError('NOT_FOUND', `Customer '${account}' was deleted in HQ.`);
