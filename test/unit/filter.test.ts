import { describe, expect, it } from 'vitest';

import { DomainError } from '../../shared/domain/errors';
import type { Operation } from '../../shared/domain/operation';
import { isAttributePath, matches, toFilter } from '../../shared/operations/filter';
import { fieldProperty } from '../../shared/storage/operation-index';

const op = (overrides: Partial<Operation> = {}): Operation => ({
  operationId: 'ASYNC-0000000001-1',
  requestId: 'r',
  customerKey: 'ASYNC-0000000001',
  seq: 1,
  channel: 'web',
  type: 'Create',
  operationTimestamp: '2026-11-20T10:00:00.000Z',
  status: 'Failed',
  changeDescription: '',
  changes: { email: 'a@b.dk', 'address.city': 'Aarhus', 'attributes.visits': 5, 'attributes.vip': true },
  grid: [],
  attempts: 1,
  history: [],
  ...overrides,
});

describe('operation filters', () => {
  it('knows the customer fields an operator can filter on', () => {
    for (const path of ['email', 'address.city', 'attributes.loyaltyTier', 'attributes.a-b_c']) {
      expect(isAttributePath(path)).toBe(true);
    }
    for (const path of [
      'shoeSize',
      'address.town',
      'attributes.',
      'attributes.__proto__',
      'attributes.x.y',
      'PartitionKey',
    ]) {
      expect(isAttributePath(path)).toBe(false);
    }
  });

  it('pairs field and value parameters, and names the odd one out', () => {
    expect(toFilter({ field: ['email', 'address.city'], value: ['a@b.dk', 'Aarhus'] }).fields).toEqual([
      { field: 'email', value: 'a@b.dk' },
      { field: 'address.city', value: 'Aarhus' },
    ]);
    const error = (() => {
      try {
        toFilter({ field: ['email', 'phone'], value: 'x' });
      } catch (e) {
        return e as DomainError;
      }
    })();
    expect(error?.errors).toHaveProperty('value');
  });

  it('refuses a window that ends before it starts', () => {
    expect(() => toFilter({ from: '2026-11-02T00:00:00Z', to: '2026-11-01T00:00:00Z' })).toThrow(DomainError);
  });

  it('matches values as text, so numbers and booleans can be searched', () => {
    const f = (field: string, value: string) => ({ fields: [{ field, value }] });
    expect(matches(op(), f('attributes.visits', '5'))).toBe(true);
    expect(matches(op(), f('attributes.vip', 'true'))).toBe(true);
    expect(matches(op(), f('address.city', 'aarhus'))).toBe(false);
    expect(matches(op(), { ...f('email', 'a@b.dk'), status: 'Synced' })).toBe(false);
    expect(matches(op(), { fields: [], from: '2026-11-21T00:00:00.000Z' })).toBe(false);
  });

  it('turns field paths into distinct, legal property names', () => {
    const names = ['address.city', 'attributes.a_b', 'attributes.a-b', 'attributes.a_2Db'].map(fieldProperty);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
  });
});
