import { describe, expect, it } from 'vitest';

import { SyncRun } from '../../shared/coupling/sync';
import { agreed, decide, sameError, type SyncError } from '../../shared/domain/coupling';
import type { Crm } from '../../shared/domain/crm';
import {
  crmSnapshot,
  customerFromRow,
  hqSnapshot,
  MAPPINGS,
  type Snapshot,
  toColumns,
  toHqChanges,
} from '../../shared/domain/crm-mapping';
import type { Customer } from '../../shared/domain/customer';
import type { CouplingSettings, SyncContext } from '../../shared/operations/context';

const contacts = MAPPINGS.contacts;
const ann: Customer = {
  customerType: 'Person',
  firstName: 'Ann',
  lastName: 'Berg',
  email: 'ann@example.dk',
  phone: '+45 1111',
  customerGroup: 'Retail',
  currency: 'DKK',
  address: { street: 'Åboulevarden 1', city: 'Aarhus', postalCode: '8000', countryRegion: 'DK' },
};
const hqOf = (customer: Customer) => hqSnapshot(contacts, { customerAccount: 'C000100', customer });
const base = hqOf(ann);
const edit = (snapshot: Snapshot, changes: Snapshot) => ({ ...snapshot, ...changes });

describe('the declarative mapping', () => {
  it('reads HQ fields and CRM columns into the same snapshot, with an empty text as none', () => {
    const row = {
      contactid: 'x',
      firstname: 'Ann',
      lastname: 'Berg',
      emailaddress1: 'ann@example.dk',
      telephone1: '+45 1111',
      address1_line1: 'Åboulevarden 1',
      address1_city: 'Aarhus',
      address1_postalcode: '8000',
      address1_country: 'DK',
      externaluseridentifier: 'C000100',
    };
    expect(crmSnapshot(contacts, row)).toEqual(base);
    expect(crmSnapshot(contacts, { ...row, telephone1: '' }).phone).toBeNull();
  });

  it('writes the HQ customer account into the CRM row but never takes it from there', () => {
    expect(toColumns(contacts, base)).toMatchObject({
      externaluseridentifier: 'C000100',
      emailaddress1: 'ann@example.dk',
    });
    expect(toHqChanges(contacts, base)).not.toHaveProperty('customerAccount');
    expect(MAPPINGS.accounts.fields.find((f) => f.field === 'customerAccount')?.column).toBe('accountnumber');
  });

  it('gives a customer made from a CRM row the HQ-required fields the row lacks', () => {
    const customer = customerFromRow(
      MAPPINGS.accounts,
      { accountid: 'x', name: 'Contoso', emailaddress1: 'info@contoso.dk', telephone1: null },
      { customerGroup: 'Wholesale', currency: 'EUR' },
    );
    expect(customer).toEqual({
      customerType: 'Organization',
      organizationName: 'Contoso',
      email: 'info@contoso.dk',
      customerGroup: 'Wholesale',
      currency: 'EUR',
    });
  });
});

describe('deciding what a coupled pair needs', () => {
  it('does nothing when neither side changed', () => {
    expect(decide(contacts, base, base, base, 'None')).toEqual({ kind: 'write', toCrm: [], toHq: [], base });
  });

  it('sends an HQ change to the CRM with the old CRM value beside the new one', () => {
    const hq = edit(base, { phone: '+45 2222' });
    const decision = decide(contacts, base, hq, base, 'None');
    expect(decision).toEqual({
      kind: 'write',
      toCrm: [{ name: 'phone', oldValue: '+45 1111', newValue: '+45 2222' }],
      toHq: [],
      base: hq,
    });
  });

  it('brings a CRM change to HQ', () => {
    const crm = edit(base, { 'address.city': 'Odense' });
    const decision = decide(contacts, base, base, crm, 'None');
    expect(decision).toMatchObject({
      toCrm: [],
      toHq: [{ name: 'address.city', oldValue: 'Aarhus', newValue: 'Odense' }],
    });
    expect(decision.kind === 'write' && decision.base['address.city']).toBe('Odense');
  });

  it('reports every differing field with both values when both sides changed', () => {
    const hq = edit(base, { phone: '+45 2222' });
    const crm = edit(base, { email: 'ann@crm.dk' });
    expect(decide(contacts, base, hq, crm, 'None')).toEqual({
      kind: 'conflict',
      differences: [
        { field: 'email', crmField: 'emailaddress1', hqValue: 'ann@example.dk', crmValue: 'ann@crm.dk' },
        { field: 'phone', crmField: 'telephone1', hqValue: '+45 2222', crmValue: '+45 1111' },
      ],
    });
  });

  it('moves on silently when both sides made the same change', () => {
    const both = edit(base, { phone: '+45 3333' });
    expect(decide(contacts, base, both, both, 'None')).toEqual({ kind: 'write', toCrm: [], toHq: [], base: both });
  });

  it('lets the conflict policy pick a side', () => {
    const hq = edit(base, { phone: '+45 2222' });
    const crm = edit(base, { phone: '+45 3333' });
    expect(decide(contacts, base, hq, crm, 'SendToCrm')).toMatchObject({
      toCrm: [{ name: 'phone', newValue: '+45 2222' }],
      toHq: [],
      resolved: 'SendToCrm',
    });
    expect(decide(contacts, base, hq, crm, 'GetFromCrm')).toMatchObject({
      toCrm: [],
      toHq: [{ name: 'phone', newValue: '+45 3333' }],
      resolved: 'GetFromCrm',
    });
  });

  it('keeps HQ-only fields HQ’s even when the CRM edits them, without calling it a conflict', () => {
    const crm = edit(base, { customerAccount: 'typed by hand' });
    expect(decide(contacts, base, base, crm, 'None')).toMatchObject({
      kind: 'write',
      toCrm: [{ name: 'customerAccount', oldValue: 'typed by hand', newValue: 'C000100' }],
      toHq: [],
    });
  });

  it('treats every difference of a pair just coupled as a conflict: neither side is silently overwritten', () => {
    const crm = edit(base, { phone: '+45 9999' });
    const start = agreed(base, crm);
    expect(start).not.toHaveProperty('phone');
    expect(decide(contacts, start, base, crm, 'None')).toMatchObject({
      kind: 'conflict',
      differences: [{ field: 'phone', hqValue: '+45 1111', crmValue: '+45 9999' }],
    });
  });
});

describe('repeated errors', () => {
  const error: SyncError = {
    kind: 'ModifiedInBoth',
    message: 'x',
    failedOn: '2026-11-30T10:00:00.000Z',
    hqExists: true,
    crmExists: true,
    differences: [{ field: 'phone', crmField: 'telephone1', hqValue: '1', crmValue: '2' }],
  };
  it('are the same error only with the same kind, message and values, whenever they happened', () => {
    expect(sameError(error, { ...error, failedOn: '2026-11-30T11:00:00.000Z' })).toBe(true);
    expect(sameError(error, { ...error, differences: [{ ...error.differences![0]!, crmValue: '3' }] })).toBe(false);
    expect(sameError(error, { ...error, kind: 'Failed' })).toBe(false);
    expect(sameError(undefined, error)).toBe(false);
  });
});

describe('a run’s parallel work', () => {
  it('stops every worker before the run fails, so nothing of a failed run overlaps the next one', async () => {
    const ctx = { clock: () => new Date() } as SyncContext;
    const settings = { crm: () => ({}) as Crm, budgetMs: 60_000, parallelism: 4 } as unknown as CouplingSettings;
    const run = new SyncRun(ctx, settings, { job: 'test' });
    const done: number[] = [];
    const items = Array.from({ length: 20 }, (_, i) => i);
    const failed = run.each(items, async (i) => {
      if (i === 1) throw new Error('storage unavailable');
      await new Promise((resolve) => setTimeout(resolve, 10));
      done.push(i);
    });
    await expect(failed).rejects.toThrow('storage unavailable');
    const atFailure = done.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(done).toHaveLength(atFailure);
    expect(atFailure).toBeLessThan(items.length - 1);
  });
});
