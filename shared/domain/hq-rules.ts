import { applyChanges, type AttributeChange, attributeGrid, type Changes } from './changes';
import { isKnownCountryRegion, isKnownCurrency } from './codes';
import { type Customer, customerSchema } from './customer';
import type { CustomerRecord, OperationType } from './operation';

export interface HqSettings {
  customerGroups: readonly string[];
}

/** Why HQ refused an operation. Codes are stable: operators group failures by them. */
export interface HqViolation {
  code:
    | 'CUSTOMER_GROUP_NOT_FOUND'
    | 'UNKNOWN_CURRENCY'
    | 'UNKNOWN_COUNTRY_REGION'
    | 'INVALID_CUSTOMER'
    | 'EMAIL_IN_USE'
    | (typeof FINAL_VIOLATIONS)[number];
  message: string;
}

/**
 * Refusals about whether the customer is there at all, rather than about its values: no repair of values can
 * change them, so they are final (see `isFinal` in lifecycle.ts).
 */
export const FINAL_VIOLATIONS = ['CUSTOMER_DELETED', 'CUSTOMER_EXISTS'] as const;

/**
 * Whether the customer is there for an operation of this type: a deleted customer takes only a restore (a
 * Create), and a restore only a deleted customer. Checked before the operation's values.
 */
export function checkExistence(
  record: Pick<CustomerRecord, 'customerKey' | 'customerAccount' | 'customer' | 'deleted'>,
  type: OperationType,
): HqViolation | undefined {
  const account = record.customerAccount ?? record.customerKey;
  if (record.deleted && type !== 'Create') {
    return { code: 'CUSTOMER_DELETED', message: `Customer ${account} was deleted in HQ.` };
  }
  if (type === 'Create' && record.customer) {
    return {
      code: 'CUSTOMER_EXISTS',
      message: `Customer ${account} exists in HQ; only a deleted customer can be restored.`,
    };
  }
  return undefined;
}

export type Evaluation =
  | { ok: true; customer: Customer; grid: AttributeChange[] }
  | { ok: false; violation: HqViolation; grid: AttributeChange[] };

/**
 * Applies an operation's changes to the current HQ customer and checks every HQ rule that needs no I/O.
 * Email uniqueness needs the other customers, so the use case checks it after this passes.
 */
export function evaluate(current: Customer | undefined, changes: Changes, settings: HqSettings): Evaluation {
  const grid = attributeGrid(current, changes);
  const parsed = customerSchema.safeParse(applyChanges(current, changes));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'customer'} ${i.message}`);
    return { ok: false, grid, violation: { code: 'INVALID_CUSTOMER', message: problems.join('; ') } };
  }
  const customer = parsed.data;
  const violation = checkHqRules(customer, settings);
  return violation ? { ok: false, grid, violation } : { ok: true, customer, grid };
}

export function checkHqRules(customer: Customer, settings: HqSettings): HqViolation | undefined {
  const group = customer.customerGroup.toLowerCase();
  if (!settings.customerGroups.some((g) => g.toLowerCase() === group)) {
    return {
      code: 'CUSTOMER_GROUP_NOT_FOUND',
      message: `Customer group '${customer.customerGroup}' does not exist in HQ (known: ${settings.customerGroups.join(', ')}).`,
    };
  }
  if (!isKnownCurrency(customer.currency)) {
    return { code: 'UNKNOWN_CURRENCY', message: `Currency '${customer.currency}' is not a known currency code.` };
  }
  const country = customer.address?.countryRegion;
  if (country !== undefined && !isKnownCountryRegion(country)) {
    return { code: 'UNKNOWN_COUNTRY_REGION', message: `Country/region '${country}' is not a known code.` };
  }
  return undefined;
}

export const normalizeEmail = (email: string) => email.trim().toLowerCase();
