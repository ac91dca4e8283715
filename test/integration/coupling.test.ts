import { randomUUID } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { getCoupling, syncErrorsPage, syncLogPage } from '../../shared/coupling/couplings';
import { rowIdFor } from '../../shared/coupling/records';
import { Dataverse } from '../../shared/crm/dataverse';
import { runJob } from '../../shared/jobs';
import { findCustomer } from '../../shared/operations/accounts';
import { getCustomer } from '../../shared/operations/queries';
import { submitDelete, submitEdit } from '../../shared/operations/submit';
import { createdCustomer, drain, newCrmContact, setup, sync, syncFailing, writes } from './coupling-support';

describe('crm-sync', () => {
  it('inserts a channel’s new customer into the CRM with its deterministic id and HQ account, and logs it', async () => {
    const { ctx, doorbell, dv } = await setup();
    await sync(ctx); // the first run starts change tracking
    const customer = await createdCustomer(ctx, doorbell);
    const run = await sync(ctx);
    expect(run.counts).toMatchObject({ inserted: 1, failed: 0 });
    expect(run.directions).toMatchObject({ ToCrm: { inserted: 1 }, FromCrm: { inserted: 0 } });

    const key = customer.asyncCustomerAccount!;
    const row = dv.row('contacts', rowIdFor(key))!;
    expect(row).toMatchObject({
      firstname: customer.customer.firstName,
      lastname: customer.customer.lastName,
      emailaddress1: customer.customer.email,
      address1_city: 'Aarhus',
      externaluseridentifier: customer.customerAccount,
    });
    expect(await getCoupling(ctx, customer.customerAccount)).toMatchObject({
      customerAccount: customer.customerAccount,
      crmTable: 'contacts',
      crmId: rowIdFor(key),
      lastSyncResult: 'Success',
      skipped: false,
      lastSync: { ToCrm: { at: expect.any(String), result: 'Inserted', job: 'crm-sync', run: expect.any(String) } },
    });
    const log = await syncLogPage(ctx, customer.customerAccount, 10);
    expect(log.items).toEqual([
      expect.objectContaining({
        job: 'crm-sync',
        direction: 'ToCrm',
        result: 'Inserted',
        fields: expect.arrayContaining([{ name: 'address.city', oldValue: null, newValue: 'Aarhus' }]),
      }),
    ]);
  });

  it('brings a CRM user’s edit to HQ as an operation from the channel crm, and writes nothing back (no echo)', async () => {
    const { ctx, doorbell, dv, crmUser } = await setup();
    await sync(ctx);
    const customer = await createdCustomer(ctx, doorbell);
    await sync(ctx);
    const id = rowIdFor(customer.asyncCustomerAccount!);
    await crmUser.update({ collection: 'contacts', key: id, data: { telephone1: '+45 7000 0000' } });

    const run = await sync(ctx);
    expect(run.directions).toMatchObject({ FromCrm: { modified: 1 }, ToCrm: { modified: 0 } });
    await drain(ctx, doorbell);
    expect((await getCustomer(ctx, customer.customerAccount)).customer.phone).toBe('+45 7000 0000');
    const { items } = await syncLogPage(ctx, customer.customerAccount, 10);
    expect(items[0]).toMatchObject({
      direction: 'FromCrm',
      result: 'Modified',
      fields: [{ name: 'phone', oldValue: null, newValue: '+45 7000 0000' }],
    });

    const before = writes(dv);
    const echo = await sync(ctx);
    const quiet = await sync(ctx);
    expect(writes(dv)).toBe(before);
    expect(echo.counts).toMatchObject({ inserted: 0, modified: 0, failed: 0 });
    expect(quiet.counts).toMatchObject({ inserted: 0, modified: 0, unchanged: 0, failed: 0 });
  });

  it('sends an HQ edit to the CRM with the old and new value in the log', async () => {
    const { ctx, doorbell, dv } = await setup();
    await sync(ctx);
    const customer = await createdCustomer(ctx, doorbell);
    await sync(ctx);
    await submitEdit(ctx, {
      channel: 'pos-1',
      account: customer.customerAccount,
      patch: { address: { city: 'Odense' } },
    });
    await drain(ctx, doorbell);
    const run = await sync(ctx);
    expect(run.directions).toMatchObject({ ToCrm: { modified: 1 } });
    expect(dv.row('contacts', rowIdFor(customer.asyncCustomerAccount!))).toMatchObject({ address1_city: 'Odense' });
    const { items } = await syncLogPage(ctx, customer.customerAccount, 1);
    expect(items[0]).toMatchObject({
      result: 'Modified',
      fields: [{ name: 'address.city', oldValue: 'Aarhus', newValue: 'Odense' }],
    });
  });

  it('reports a record modified in both apps with both values of every differing field, and skips it the second time', async () => {
    const { ctx, doorbell, crmUser, dv } = await setup();
    await sync(ctx);
    const customer = await createdCustomer(ctx, doorbell);
    await sync(ctx);
    await submitEdit(ctx, { channel: 'web', account: customer.customerAccount, patch: { phone: '+45 1111' } });
    await drain(ctx, doorbell);
    const id = rowIdFor(customer.asyncCustomerAccount!);
    await crmUser.update({ collection: 'contacts', key: id, data: { telephone1: '+45 2222', address1_city: 'Vejle' } });

    const run = await sync(ctx);
    expect(run.counts).toMatchObject({ failed: 1, modified: 0 });
    const { items } = await syncErrorsPage(ctx, 'ModifiedInBoth', 10);
    expect(items).toEqual([
      expect.objectContaining({
        customerAccount: customer.customerAccount,
        crmTable: 'contacts',
        crmId: id,
        kind: 'ModifiedInBoth',
        skipped: false,
        hqExists: true,
        crmExists: true,
        actions: ['Synchronize', 'Retry', 'RemoveCoupling'],
        differences: [
          { field: 'phone', crmField: 'telephone1', hqValue: '+45 1111', crmValue: '+45 2222' },
          { field: 'address.city', crmField: 'address1_city', hqValue: 'Aarhus', crmValue: 'Vejle' },
        ],
      }),
    ]);
    // Neither side was overwritten.
    expect((await getCustomer(ctx, customer.customerAccount)).customer.phone).toBe('+45 1111');

    await sync(ctx);
    expect((await syncErrorsPage(ctx, undefined, 10)).items).toEqual([expect.objectContaining({ skipped: true })]);
    // Skipped: left out of runs, even when it changes again, until an operator retries it.
    await submitEdit(ctx, { channel: 'web', account: customer.customerAccount, patch: { phone: '+45 3333' } });
    await drain(ctx, doorbell);
    const third = await sync(ctx);
    expect(third.counts).toMatchObject({ skipped: 1, failed: 0, modified: 0 });
    expect(dv.row('contacts', id)).toMatchObject({ telephone1: '+45 2222' });
  });

  it('reports a CRM row deleted while its HQ customer exists, and deletes nothing in HQ', async () => {
    const { ctx, doorbell, crmUser } = await setup();
    await sync(ctx);
    const customer = await createdCustomer(ctx, doorbell);
    await sync(ctx);
    await crmUser.deleteRecord({ collection: 'contacts', key: rowIdFor(customer.asyncCustomerAccount!) });
    const run = await sync(ctx);
    expect(run.directions).toMatchObject({ FromCrm: { failed: 1 } });
    expect((await syncErrorsPage(ctx, undefined, 10)).items).toEqual([
      expect.objectContaining({
        kind: 'DeletedInCrm',
        hqExists: true,
        crmExists: false,
        actions: ['Restore', 'Delete', 'RemoveCoupling'],
      }),
    ]);
    expect(await getCustomer(ctx, customer.customerAccount)).toBeDefined();
  });

  it('restores a row deleted in the CRM under the Restore deletion policy, with the same id', async () => {
    const { ctx, doorbell, crmUser, dv } = await setup({ deletionPolicy: 'Restore' });
    await sync(ctx);
    const customer = await createdCustomer(ctx, doorbell);
    await sync(ctx);
    const id = rowIdFor(customer.asyncCustomerAccount!);
    await crmUser.deleteRecord({ collection: 'contacts', key: id });
    const run = await sync(ctx);
    expect(run.directions).toMatchObject({ ToCrm: { inserted: 1 } });
    expect(dv.row('contacts', id)).toMatchObject({ emailaddress1: customer.customer.email });
    expect((await syncErrorsPage(ctx, undefined, 10)).items).toEqual([]);
  });

  it('reports an HQ customer deleted while its CRM row exists, and deletes nothing in the CRM', async () => {
    const { ctx, doorbell, dv } = await setup();
    await sync(ctx);
    const customer = await createdCustomer(ctx, doorbell);
    await sync(ctx);
    await submitDelete(ctx, { account: customer.customerAccount });
    await drain(ctx, doorbell);
    const run = await sync(ctx);
    expect(run.directions).toMatchObject({ ToCrm: { failed: 1, deleted: 0 } });
    expect((await syncErrorsPage(ctx, undefined, 10)).items).toEqual([
      expect.objectContaining({ kind: 'DeletedInHq', hqExists: false, crmExists: true }),
    ]);
    expect(dv.row('contacts', rowIdFor(customer.asyncCustomerAccount!))).toBeDefined();
  });

  it.each([
    ['deletes the CRM row of a customer deleted in HQ', 'hq'],
    ['deletes the HQ customer of a row deleted in the CRM', 'crm'],
  ] as const)('under the Delete deletion policy %s, and uncouples them', async (_, deletedIn) => {
    const { ctx, doorbell, dv, crmUser } = await setup({ deletionPolicy: 'Delete' });
    await sync(ctx);
    const customer = await createdCustomer(ctx, doorbell);
    await sync(ctx);
    const id = rowIdFor(customer.asyncCustomerAccount!);
    if (deletedIn === 'hq') await submitDelete(ctx, { account: customer.customerAccount });
    else await crmUser.deleteRecord({ collection: 'contacts', key: id });
    await drain(ctx, doorbell);
    const run = await sync(ctx);
    await drain(ctx, doorbell);
    expect(run.counts).toMatchObject({ deleted: 1, failed: 0 });
    expect(dv.row('contacts', id)).toBeUndefined();
    await expect(getCustomer(ctx, customer.customerAccount)).rejects.toMatchObject({
      code: expect.stringMatching(/NOT_FOUND$/),
    });
    await expect(getCoupling(ctx, customer.customerAccount)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('restores an HQ customer deleted in HQ from its CRM row under the Restore policy, same account', async () => {
    const { ctx, doorbell, crmUser } = await setup({ deletionPolicy: 'Restore' });
    await sync(ctx);
    const customer = await createdCustomer(ctx, doorbell);
    await sync(ctx);
    await crmUser.update({
      collection: 'contacts',
      key: rowIdFor(customer.asyncCustomerAccount!),
      data: { telephone1: '+45 5555' },
    });
    await submitDelete(ctx, { account: customer.customerAccount });
    await drain(ctx, doorbell);
    const run = await sync(ctx);
    expect(run.directions).toMatchObject({ FromCrm: { inserted: 1 } });
    await drain(ctx, doorbell);
    const restored = await getCustomer(ctx, customer.customerAccount);
    expect(restored.customer).toMatchObject({
      email: customer.customer.email,
      phone: '+45 5555',
      customerGroup: 'Retail',
    });
    const quiet = await sync(ctx);
    expect(quiet.counts).toMatchObject({ inserted: 0, modified: 0, failed: 0 });
  });

  it('creates an HQ customer for a row created in the CRM, once, and then shows its HQ account in the row', async () => {
    const { ctx, doorbell, crmUser, dv } = await setup();
    await sync(ctx);
    const id = (await crmUser.create({
      collection: 'contacts',
      data: { firstname: 'Bo', lastname: 'Holm', emailaddress1: 'bo.holm@example.dk' },
    })) as string;
    const first = await sync(ctx);
    expect(first.directions).toMatchObject({ FromCrm: { inserted: 1 } });
    await drain(ctx, doorbell);
    const again = await sync(ctx); // the applied create releases the record; its account goes to the CRM row
    expect(again.counts).toMatchObject({ inserted: 0, failed: 0 });
    const row = dv.row('contacts', id)!;
    expect(row.externaluseridentifier).toMatch(/^C\d{9}$/);
    const hq = await getCustomer(ctx, row.externaluseridentifier as string);
    expect(hq.customer).toMatchObject({ firstName: 'Bo', lastName: 'Holm', customerGroup: 'Retail', currency: 'EUR' });
    expect((await findCustomer(ctx.store, hq.customerAccount)).value.nextSeq).toBe(2); // one operation: the create
    const quiet = await sync(ctx);
    expect(quiet.counts).toMatchObject({ inserted: 0, modified: 0, failed: 0 });
  });

  it('couples a new HQ customer with the one CRM row of the same email instead of inserting a duplicate', async () => {
    const { ctx, doorbell, crmUser, dv } = await setup();
    await sync(ctx);
    const email = `match.${Date.now()}@example.dk`;
    await crmUser.create({ collection: 'contacts', data: { firstname: 'Ann', lastname: 'Old', emailaddress1: email } });
    const customer = await createdCustomer(ctx, doorbell, { email, lastName: 'New' });
    const run = await sync(ctx);
    expect(run.counts).toMatchObject({ coupled: 1, inserted: 0 });
    expect(dv.rows('contacts').filter((r) => r.emailaddress1 === email)).toHaveLength(1);
    // The differing last name is for an operator to settle, not silently overwritten.
    expect((await syncErrorsPage(ctx, 'ModifiedInBoth', 10)).items[0]?.differences).toContainEqual(
      expect.objectContaining({ field: 'lastName', hqValue: 'New', crmValue: 'Old' }),
    );
    expect(await getCoupling(ctx, customer.customerAccount)).toMatchObject({ crmTable: 'contacts' });
  });

  it('reports several CRM rows matching one HQ customer as MultipleMatches and inserts nothing', async () => {
    const { ctx, doorbell, crmUser, dv } = await setup();
    await sync(ctx);
    const email = `twice.${Date.now()}@example.dk`;
    for (const lastname of ['One', 'Two']) {
      await crmUser.create({ collection: 'contacts', data: { firstname: 'Ann', lastname, emailaddress1: email } });
    }
    await createdCustomer(ctx, doorbell, { email });
    await sync(ctx);
    expect(dv.rows('contacts').filter((r) => r.emailaddress1 === email)).toHaveLength(2);
    expect((await syncErrorsPage(ctx, undefined, 10)).items).toEqual([
      expect.objectContaining({ kind: 'MultipleMatches', actions: ['Retry', 'RemoveCoupling'] }),
    ]);
  });

  it('reconciles every coupled row by a full read once the delta link has expired, finding rows deleted meanwhile', async () => {
    const { ctx, doorbell, dv, crmUser } = await setup();
    await sync(ctx);
    const kept = await createdCustomer(ctx, doorbell);
    const gone = await createdCustomer(ctx, doorbell);
    await sync(ctx);
    await crmUser.update({
      collection: 'contacts',
      key: rowIdFor(kept.asyncCustomerAccount!),
      data: { telephone1: '+45 4444' },
    });
    await crmUser.deleteRecord({ collection: 'contacts', key: rowIdFor(gone.asyncCustomerAccount!) });
    dv.faults.expireDeltaTokens();
    const run = await sync(ctx);
    expect(run.directions).toMatchObject({ FromCrm: { modified: 1, failed: 1 } });
    expect((await syncErrorsPage(ctx, undefined, 10)).items).toEqual([
      expect.objectContaining({ customerAccount: gone.customerAccount, kind: 'DeletedInCrm' }),
    ]);
    await drain(ctx, doorbell);
    expect((await getCustomer(ctx, kept.customerAccount)).customer.phone).toBe('+45 4444');
  });

  it('stops cleanly when its time budget is spent, and the next runs finish the work exactly once', async () => {
    const { ctx, doorbell, dv } = await setup({ budgetMs: 1, parallelism: 1 });
    await sync(ctx).catch(() => undefined);
    ctx.coupling = { ...ctx.coupling!, budgetMs: 60_000 };
    await sync(ctx); // change tracking starts
    for (let i = 0; i < 4; i++) await createdCustomer(ctx, doorbell);
    ctx.coupling = { ...ctx.coupling, budgetMs: 1 };
    const cut = await sync(ctx);
    expect(cut.message).toMatch(/time budget/);
    ctx.coupling = { ...ctx.coupling, budgetMs: 60_000 };
    const rest = await sync(ctx);
    expect(rest.message).toBe('Completed.');
    expect(cut.counts.inserted! + rest.counts.inserted!).toBe(4);
    expect(dv.rows('contacts')).toHaveLength(4);
  });

  it('runs once at a time: a second run while one holds the lease is refused', async () => {
    const { ctx, dv } = await setup();
    dv.faults.delayNext(1, 1000); // the first run holds the lease while its first CRM request is answered late
    const first = runJob(ctx, 'crm-sync');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await expect(runJob(ctx, 'crm-sync')).rejects.toMatchObject({ code: 'JOB_RUNNING' });
    await expect(first).resolves.toMatchObject({ message: 'Completed.' });
    await expect(runJob(ctx, 'crm-sync')).resolves.toMatchObject({ job: 'crm-sync' }); // released
  });

  it('sends an HQ edit in a later run when a run could not even record that sending it failed', async () => {
    const { ctx, doorbell, dv } = await setup();
    await sync(ctx);
    const customer = await createdCustomer(ctx, doorbell);
    await sync(ctx);
    await submitEdit(ctx, { channel: 'web', account: customer.customerAccount, patch: { address: { city: 'Vejle' } } });
    await drain(ctx, doorbell);
    // The CRM refuses the write, and storage is down while the run records that.
    dv.faults.failNext(1, 400, { method: 'PATCH' });
    await syncFailing(ctx, ctx.store.syncRecords, 'save', 'storage unavailable').catch(() => undefined);

    await sync(ctx);
    expect(dv.row('contacts', rowIdFor(customer.asyncCustomerAccount!))).toMatchObject({ address1_city: 'Vejle' });
  });

  it('reports a CRM edit and an HQ edit still being applied as modified in both apps, overwriting neither', async () => {
    const { ctx, doorbell, crmUser, dv } = await setup();
    await sync(ctx);
    const customer = await createdCustomer(ctx, doorbell);
    await sync(ctx);
    const id = rowIdFor(customer.asyncCustomerAccount!);
    await crmUser.update({ collection: 'contacts', key: id, data: { address1_city: 'Vejle' } });
    // Then a channel edits the same field: HQ has accepted the edit, and applies it only after the run.
    await submitEdit(ctx, {
      channel: 'web',
      account: customer.customerAccount,
      patch: { address: { city: 'Odense' } },
    });
    const run = await sync(ctx);
    expect(run.counts).toMatchObject({ failed: 1, modified: 0 });
    await drain(ctx, doorbell);
    await sync(ctx);

    expect((await getCustomer(ctx, customer.customerAccount)).customer.address?.city).toBe('Odense');
    expect(dv.row('contacts', id)).toMatchObject({ address1_city: 'Vejle' });
    expect((await syncErrorsPage(ctx, undefined, 10)).items).toEqual([
      expect.objectContaining({
        kind: 'ModifiedInBoth',
        differences: [{ field: 'address.city', crmField: 'address1_city', hqValue: 'Odense', crmValue: 'Vejle' }],
      }),
    ]);
  });

  it('reports a row deleted while its CRM edit was being applied in HQ, even after a run that stopped settling it', async () => {
    const { ctx, doorbell, crmUser } = await setup();
    await sync(ctx);
    const customer = await createdCustomer(ctx, doorbell);
    await sync(ctx);
    const id = rowIdFor(customer.asyncCustomerAccount!);
    await crmUser.update({ collection: 'contacts', key: id, data: { telephone1: '+45 7777' } });
    await sync(ctx); // submitted to HQ; the record waits for it
    await crmUser.deleteRecord({ collection: 'contacts', key: id });
    await sync(ctx); // the deletion is seen while the record waits
    await drain(ctx, doorbell);
    // The run that sees the operation applied stops right after releasing the record (its process dies).
    await syncFailing(ctx, ctx.store.crmSyncState, 'settled', 'the process died').catch(() => undefined);

    await sync(ctx);
    expect((await syncErrorsPage(ctx, undefined, 10)).items).toEqual([
      expect.objectContaining({ kind: 'DeletedInCrm', hqExists: true, crmExists: false }),
    ]);
  });

  it('reports the row a crashed insert created when its HQ customer is deleted before the next run', async () => {
    const { ctx, doorbell, dv } = await setup();
    await sync(ctx);
    const customer = await createdCustomer(ctx, doorbell);
    // The run inserts the row and dies before it records the coupling.
    await syncFailing(ctx, ctx.store.syncRecords, 'save', 'the process died').catch(() => undefined);
    const id = rowIdFor(customer.asyncCustomerAccount!);
    expect(dv.row('contacts', id)).toBeDefined();
    await submitDelete(ctx, { account: customer.customerAccount });
    await drain(ctx, doorbell);

    await sync(ctx);
    expect(dv.row('contacts', id)).toBeDefined();
    expect((await syncErrorsPage(ctx, undefined, 10)).items).toEqual([
      expect.objectContaining({ kind: 'DeletedInHq', crmId: id, hqExists: false, crmExists: true }),
    ]);
  });

  it('reports a customer deleted in HQ before its CRM edit was applied as DeletedInHq, not as waiting for good', async () => {
    const { ctx, doorbell, crmUser, dv } = await setup();
    await sync(ctx);
    const customer = await createdCustomer(ctx, doorbell);
    await sync(ctx);
    const id = rowIdFor(customer.asyncCustomerAccount!);
    await crmUser.update({ collection: 'contacts', key: id, data: { telephone1: '+45 8888' } });
    await submitDelete(ctx, { account: customer.customerAccount }); // accepted, applied after the run
    await sync(ctx); // the CRM edit goes to HQ behind the deletion, which refuses it for good
    await drain(ctx, doorbell);
    await sync(ctx);

    expect(dv.row('contacts', id)).toMatchObject({ telephone1: '+45 8888' });
    expect((await syncErrorsPage(ctx, undefined, 10)).items).toEqual([
      expect.objectContaining({
        kind: 'DeletedInHq',
        hqExists: false,
        crmExists: true,
        actions: ['Restore', 'Delete', 'RemoveCoupling'],
      }),
    ]);
  });

  it('reports the row a crashed insert created when the CRM deletes it before the next run, and does not insert it again', async () => {
    const { ctx, doorbell, crmUser, dv } = await setup();
    await sync(ctx);
    const customer = await createdCustomer(ctx, doorbell);
    // The run inserts the row and dies before it records the coupling.
    await syncFailing(ctx, ctx.store.syncRecords, 'save', 'the process died').catch(() => undefined);
    const id = rowIdFor(customer.asyncCustomerAccount!);
    await crmUser.deleteRecord({ collection: 'contacts', key: id });

    await sync(ctx);
    expect(dv.row('contacts', id)).toBeUndefined();
    expect((await syncErrorsPage(ctx, undefined, 10)).items).toEqual([
      expect.objectContaining({ kind: 'DeletedInCrm', crmId: id, hqExists: true, crmExists: false }),
    ]);
  });

  it('does not insert again a row created in the CRM and deleted there while HQ was still creating its customer', async () => {
    const { ctx, doorbell, crmUser, dv } = await setup();
    await sync(ctx);
    const id = await newCrmContact(crmUser);
    // The run submits the HQ create and links the row, and dies before it records the coupling.
    await syncFailing(ctx, ctx.store.crmSyncState, 'await', 'the process died').catch(() => undefined);
    await crmUser.deleteRecord({ collection: 'contacts', key: id });
    await sync(ctx); // sees the deletion while HQ has not applied the create yet
    await drain(ctx, doorbell);
    await sync(ctx);
    await sync(ctx);

    expect(dv.rows('contacts')).toEqual([]);
    expect((await syncErrorsPage(ctx, undefined, 10)).items).toEqual([
      expect.objectContaining({ kind: 'DeletedInCrm', crmId: id.toLowerCase(), hqExists: true, crmExists: false }),
    ]);
  });

  it('brings a CRM edit made while an import was interrupted to HQ, instead of overwriting it with the values imported', async () => {
    const { ctx, doorbell, crmUser, dv } = await setup();
    await sync(ctx);
    const id = await newCrmContact(crmUser);
    // The run submits the HQ create and stops before it links the row; the CRM user edits the row meanwhile.
    await syncFailing(ctx, ctx.store.syncRecords, 'linkRow', 'storage unavailable');
    await crmUser.update({ collection: 'contacts', key: id, data: { telephone1: '+45 1234' } });
    await sync(ctx); // the import again: HQ has not applied the create (made from the row as it was) yet
    await drain(ctx, doorbell);
    await sync(ctx);
    await drain(ctx, doorbell);
    await sync(ctx);

    const key = await ctx.store.syncRecords.customerKeyOfRow('contacts', id);
    expect((await getCustomer(ctx, key!)).customer.phone).toBe('+45 1234');
    expect(dv.row('contacts', id)).toMatchObject({ telephone1: '+45 1234' });
  });

  it('does not insert a second row for a customer created from a CRM row whose import was interrupted', async () => {
    const { ctx, doorbell, crmUser, dv } = await setup();
    await sync(ctx);
    const id = await newCrmContact(crmUser);
    // The run submits the HQ create and stops before it links the row; HQ applies the create, and the CRM user
    // changes the row's email, so the customer no longer matches it.
    await syncFailing(ctx, ctx.store.syncRecords, 'linkRow', 'storage unavailable');
    await drain(ctx, doorbell);
    const email = `bo.holm.${Date.now()}@example.dk`;
    await crmUser.update({ collection: 'contacts', key: id, data: { emailaddress1: email } });
    await sync(ctx);
    await drain(ctx, doorbell);
    await sync(ctx);
    await drain(ctx, doorbell);
    await sync(ctx);

    expect(dv.rows('contacts').map((r) => r.contactid)).toEqual([id.toLowerCase()]);
    const key = await ctx.store.syncRecords.customerKeyOfRow('contacts', id);
    expect((await getCustomer(ctx, key!)).customer.email).toBe(email);
    expect((await syncErrorsPage(ctx, undefined, 10)).items).toEqual([]);
  });

  it('reports a row deleted in the CRM before its coupling was recorded, also when the run that saw it failed on the record', async () => {
    const { ctx, doorbell, crmUser, dv } = await setup();
    await sync(ctx);
    const customer = await createdCustomer(ctx, doorbell);
    const key = customer.asyncCustomerAccount!;
    // The run inserts the row and dies before it records the coupling; a CRM user deletes the row.
    await syncFailing(ctx, ctx.store.syncRecords, 'save', 'the process died').catch(() => undefined);
    const id = rowIdFor(key);
    await crmUser.deleteRecord({ collection: 'contacts', key: id });
    // The run that sees the deletion fails on that customer once (storage), records the failure and completes.
    const customers = ctx.store.customers;
    const getRecord = customers.getRecord.bind(customers);
    let failOnce = true;
    customers.getRecord = (k) => {
      if (k === key && failOnce) {
        failOnce = false;
        return Promise.reject(new Error('storage unavailable'));
      }
      return getRecord(k);
    };
    await sync(ctx);
    customers.getRecord = getRecord;

    await sync(ctx);
    expect(dv.row('contacts', id)).toBeUndefined();
    expect((await syncErrorsPage(ctx, undefined, 10)).items).toEqual([
      expect.objectContaining({ kind: 'DeletedInCrm', crmId: id, hqExists: true, crmExists: false }),
    ]);
  });

  it('reports the deletion in HQ of a customer created from a CRM row whose import stopped before it was recorded', async () => {
    const { ctx, doorbell, crmUser, dv } = await setup();
    await sync(ctx);
    const id = await newCrmContact(crmUser);
    // The run submits the HQ create and links the row, and stops before it records the coupling.
    await syncFailing(ctx, ctx.store.crmSyncState, 'await', 'storage unavailable');
    await sync(ctx); // reads the row again, while HQ has not applied the create
    const key = (await ctx.store.syncRecords.customerKeyOfRow('contacts', id))!;
    await submitDelete(ctx, { account: key }); // HQ creates the customer, then deletes it
    await drain(ctx, doorbell);
    await sync(ctx);
    await sync(ctx);

    expect(dv.row('contacts', id)).toBeDefined();
    expect((await syncErrorsPage(ctx, undefined, 10)).items).toEqual([
      expect.objectContaining({ kind: 'DeletedInHq', crmId: id.toLowerCase(), hqExists: false, crmExists: true }),
    ]);
  });

  it('waits out a throttling CRM (429 + Retry-After) and still inserts every customer once', async () => {
    const { ctx, doorbell, dv } = await setup();
    await sync(ctx);
    for (let i = 0; i < 5; i++) await createdCustomer(ctx, doorbell);
    dv.faults.throttleNext(3, 1);
    const run = await sync(ctx);
    expect(run.counts).toMatchObject({ inserted: 5, failed: 0 });
    expect(dv.rows('contacts')).toHaveLength(5);
  });
});

describe('Dataverse connector', () => {
  it('shares match queries made at the same time, and gives each caller exactly the rows its own query would', async () => {
    const { dv } = await setup();
    const connector = new Dataverse({
      url: dv.url,
      token: 'test',
      concurrency: 4,
      timeoutMs: 5000,
      log: () => {},
    });
    const crm = connector.session(Date.now() + 60_000);
    const tag = Date.now();
    const emails = Array.from({ length: 30 }, (_, i) => `shared.${tag}.${i}@example.dk`);
    // One row, two rows (one in upper case), more rows than `top`, a quote, a non-ASCII text, the same text in
    // another case asked at the same time.
    emails.push(`o'brien.${tag}@example.dk`, `jørgen.${tag}@example.dk`, emails[2]!.toUpperCase());
    const rows = [emails[1]!, emails[2]!, emails[2]!.toUpperCase(), ...Array(12).fill(emails[3]!), emails[30]!];
    for (const email of [...rows, emails[31]!]) {
      await crm.create('contacts', randomUUID(), { lastname: 'Row', emailaddress1: email });
    }
    const ids = (found: { id: string }[][]) => found.map((rows) => rows.map((r) => r.id).sort());

    dv.resetStats();
    const together = await Promise.all(emails.map((email) => crm.find('contacts', { emailaddress1: email }, 10)));
    const requests = dv.stats().total;
    const alone = [];
    for (const email of emails) alone.push(await crm.find('contacts', { emailaddress1: email }, 10));

    expect(ids(together)).toEqual(ids(alone));
    expect(together.map((rows) => rows.length)).toEqual([0, 1, 2, 10, ...Array(26).fill(0), 1, 1, 2]);
    expect(requests).toBeLessThan(8);
  });
});
