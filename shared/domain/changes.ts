import type { Customer, CustomerPatch } from './customer';

/**
 * One representation for every change: a flat map from attribute path (`email`, `address.city`,
 * `attributes.loyaltyTier`) to its new value, `null` meaning "remove". Creates, edits and operator repairs
 * all produce one; applying it to the HQ customer is one function. The attribute grid is the same map
 * with the old values beside it.
 */
export type AttributeValue = string | number | boolean | null;
export type Changes = Record<string, AttributeValue>;

export interface AttributeChange {
  name: string;
  oldValue: AttributeValue;
  newValue: AttributeValue;
}

type Nested = Record<string, unknown>;
const NESTED = ['address', 'attributes'] as const;
const isNested = (key: string): key is (typeof NESTED)[number] => (NESTED as readonly string[]).includes(key);

export function flatten(customer: Customer | CustomerPatch): Changes {
  const changes: Changes = {};
  for (const [key, value] of Object.entries(customer)) {
    if (value === undefined) continue;
    if (isNested(key) && value !== null && typeof value === 'object') {
      for (const [inner, innerValue] of Object.entries(value as Nested)) {
        if (innerValue !== undefined) changes[`${key}.${inner}`] = innerValue as AttributeValue;
      }
    } else {
      changes[key] = value as AttributeValue;
    }
  }
  return changes;
}

/** The value at an attribute path, or null when absent. */
export function valueAt(customer: Customer | undefined, path: string): AttributeValue {
  if (!customer) return null;
  const [head, inner] = splitPath(path);
  // Own properties only: an attribute named `toString` must not find Object.prototype's.
  const own = (o: unknown, key: string) =>
    o && typeof o === 'object' && Object.hasOwn(o, key) ? (o as Nested)[key] : undefined;
  const value = inner === undefined ? own(customer, head) : own(own(customer, head), inner);
  return (value ?? null) as AttributeValue;
}

/**
 * Applies changes to a copy of the customer. The result is unvalidated: callers check it with
 * customerSchema, because an edit can leave a customer incomplete (e.g. a Person without a last name).
 */
export function applyChanges(customer: Customer | undefined, changes: Changes): Record<string, unknown> {
  const next: Nested = structuredClone((customer ?? {}) as Nested);
  for (const [path, value] of Object.entries(changes)) {
    const [head, inner] = splitPath(path);
    if (inner === undefined) {
      if (value === null) delete next[head];
      else next[head] = value;
      continue;
    }
    const group: Nested = { ...((next[head] as Nested | undefined) ?? {}) };
    if (value === null) delete group[inner];
    else group[inner] = value;
    if (Object.keys(group).length > 0) next[head] = group;
    else delete next[head];
  }
  return next;
}

/** The nested shape of a change map, keeping nulls (an edit's "remove this field"). */
export function unflatten(changes: Changes): Record<string, unknown> {
  const out: Nested = {};
  for (const [path, value] of Object.entries(changes)) {
    const [head, inner] = splitPath(path);
    if (inner === undefined) out[head] = value;
    else out[head] = { ...((out[head] as Nested | undefined) ?? {}), [inner]: value };
  }
  return out;
}

export function attributeGrid(before: Customer | undefined, changes: Changes): AttributeChange[] {
  return Object.entries(changes).map(([name, newValue]) => ({ name, oldValue: valueAt(before, name), newValue }));
}

/** A deletion's attribute grid: every attribute the customer had, with its old value and no new one. */
export const deletionGrid = (customer: Customer): AttributeChange[] =>
  attributeGrid(customer, Object.fromEntries(Object.keys(flatten(customer)).map((name) => [name, null])));

/** Attribute paths an operator may edit: a top-level field, `address.<field>` or `attributes.<name>`. */
export function splitPath(path: string): [string, string | undefined] {
  const dot = path.indexOf('.');
  return dot < 0 ? [path, undefined] : [path.slice(0, dot), path.slice(dot + 1)];
}

export function customerDisplayName(customer: Customer): string {
  return customer.customerType === 'Organization'
    ? (customer.organizationName ?? '')
    : [customer.firstName, customer.lastName].filter(Boolean).join(' ');
}
