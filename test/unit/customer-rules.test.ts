import { describe, expect, it } from 'vitest';

import { applyChanges, attributeGrid, deletionGrid, flatten } from '../../shared/domain/changes';
import { customerPatchSchema, customerSchema } from '../../shared/domain/customer';
import { checkExistence, evaluate } from '../../shared/domain/hq-rules';

const hq = { customerGroups: ['Retail', 'Wholesale', 'Employees'] };
const ann = {
  customerType: 'Person' as const,
  firstName: 'Ann',
  lastName: 'Berg',
  email: 'ann@example.dk',
  customerGroup: 'Retail',
  currency: 'DKK',
  address: { street: 'Åboulevarden 1', city: 'Aarhus', postalCode: '8000', countryRegion: 'DK' },
  attributes: { loyaltyTier: 'Gold', newsletter: true },
};

describe('structural rules at submit', () => {
  it('accepts a complete person', () => {
    expect(customerSchema.safeParse(ann).success).toBe(true);
  });

  it('names every bad field at once', () => {
    const result = customerSchema.safeParse({
      ...ann,
      email: 'nope',
      currency: 'DK',
      lastName: undefined,
      shoeSize: 42,
    });
    expect(result.success).toBe(false);
    const paths = result.error!.issues.map((i) => (i.code === 'unrecognized_keys' ? i.keys.join() : i.path.join('.')));
    expect(paths).toEqual(expect.arrayContaining(['email', 'currency', 'shoeSize']));
  });

  it('requires names for a person and an organization name for an organization', () => {
    expect(customerSchema.safeParse({ ...ann, firstName: undefined }).success).toBe(false);
    const org = { ...ann, customerType: 'Organization', firstName: undefined, lastName: undefined };
    expect(customerSchema.safeParse(org).success).toBe(false);
    expect(customerSchema.safeParse({ ...org, organizationName: 'Berg ApS' }).success).toBe(true);
  });

  it('caps attribute count and refuses prototype keys as attribute names', () => {
    const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`a${i}`, i]));
    expect(customerSchema.safeParse({ ...ann, attributes: many }).success).toBe(false);
    expect(customerSchema.safeParse({ ...ann, attributes: { constructor: 'x' } }).success).toBe(false);
    // zod drops a JSON `__proto__` key instead of assigning it: it never reaches the customer or a prototype.
    const parsed = customerSchema.parse({ ...ann, attributes: JSON.parse('{"__proto__": {"admin": true}}') });
    expect(Object.keys(parsed.attributes ?? {})).toEqual([]);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it('rejects an empty edit and unknown fields in an edit', () => {
    expect(customerPatchSchema.safeParse({}).success).toBe(false);
    expect(customerPatchSchema.safeParse({ address: { town: 'Aarhus' } }).success).toBe(false);
    expect(customerPatchSchema.safeParse({ phone: null, attributes: { loyaltyTier: null } }).success).toBe(true);
  });
});

describe('changes and the attribute grid', () => {
  it('flattens nested fields to address.<field> and attributes.<name>', () => {
    expect(flatten(ann)).toMatchObject({
      email: 'ann@example.dk',
      'address.city': 'Aarhus',
      'attributes.loyaltyTier': 'Gold',
      'attributes.newsletter': true,
    });
  });

  it('applies an edit field by field and removes what is set to null', () => {
    const next = applyChanges(
      ann,
      flatten({ address: { city: 'Odense' }, attributes: { newsletter: null }, phone: '+45 1234' }),
    );
    expect(next).toMatchObject({ phone: '+45 1234', address: { city: 'Odense', street: 'Åboulevarden 1' } });
    expect((next.attributes as Record<string, unknown>).newsletter).toBeUndefined();
    expect((next.attributes as Record<string, unknown>).loyaltyTier).toBe('Gold');
  });

  it('shows old and new value of every touched attribute', () => {
    const grid = attributeGrid(ann, { email: 'ann@berg.dk', 'address.city': 'Odense', 'attributes.loyaltyTier': null });
    expect(grid).toEqual([
      { name: 'email', oldValue: 'ann@example.dk', newValue: 'ann@berg.dk' },
      { name: 'address.city', oldValue: 'Aarhus', newValue: 'Odense' },
      { name: 'attributes.loyaltyTier', oldValue: 'Gold', newValue: null },
    ]);
  });

  it('a deletion’s grid shows every attribute the customer had, with no new value', () => {
    const grid = deletionGrid(ann);
    expect(grid.map((row) => row.name)).toEqual(Object.keys(flatten(ann)));
    expect(grid).toContainEqual({ name: 'address.city', oldValue: 'Aarhus', newValue: null });
    expect(grid).toContainEqual({ name: 'attributes.newsletter', oldValue: true, newValue: null });
    expect(grid.every((row) => row.newValue === null && row.oldValue !== null)).toBe(true);
  });
});

describe('HQ rules when processing', () => {
  it('accepts a known group, currency and country case-insensitively', () => {
    const result = evaluate(undefined, flatten({ ...ann, customerGroup: 'retail', currency: 'dkk' }), hq);
    expect(result.ok).toBe(true);
  });

  it.each([
    [{ customerGroup: 'VIP' }, 'CUSTOMER_GROUP_NOT_FOUND'],
    [{ currency: 'ABC' }, 'UNKNOWN_CURRENCY'],
    [{ address: { ...ann.address, countryRegion: 'XX' } }, 'UNKNOWN_COUNTRY_REGION'],
  ])('refuses %j with %s', (change, code) => {
    const result = evaluate(undefined, flatten({ ...ann, ...change }), hq);
    expect(result.ok ? undefined : result.violation.code).toBe(code);
  });

  it('refuses an edit that leaves a person without a last name', () => {
    const result = evaluate(ann, { lastName: null }, hq);
    expect(result.ok ? undefined : result.violation).toMatchObject({ code: 'INVALID_CUSTOMER' });
  });

  it('accepts three-letter country codes', () => {
    expect(evaluate(undefined, flatten({ ...ann, address: { ...ann.address, countryRegion: 'DNK' } }), hq).ok).toBe(
      true,
    );
  });
});

describe('whether the customer is there for an operation', () => {
  const live = { customerKey: 'ASYNC-0000000001', customerAccount: 'C000000123', customer: ann };
  const deleted = { customerKey: 'ASYNC-0000000001', customerAccount: 'C000000123', deleted: true as const };

  it('a live customer takes edits and deletions, and its first create applies to an empty record', () => {
    expect(checkExistence(live, 'Update')).toBeUndefined();
    expect(checkExistence(live, 'Delete')).toBeUndefined();
    expect(checkExistence({ customerKey: 'ASYNC-0000000001' }, 'Create')).toBeUndefined();
  });

  it('a deleted customer refuses edits and deletions with CUSTOMER_DELETED, naming its account', () => {
    for (const type of ['Update', 'Delete'] as const) {
      expect(checkExistence(deleted, type)).toEqual({
        code: 'CUSTOMER_DELETED',
        message: 'Customer C000000123 was deleted in HQ.',
      });
    }
  });

  it('only a deleted customer can be restored (a create of a live one is CUSTOMER_EXISTS)', () => {
    expect(checkExistence(deleted, 'Create')).toBeUndefined();
    expect(checkExistence(live, 'Create')).toMatchObject({ code: 'CUSTOMER_EXISTS' });
  });
});
