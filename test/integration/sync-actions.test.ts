import type { DynamicsWebApi } from 'dynamics-web-api';
import { beforeAll, describe, expect, it } from 'vitest';

import type { DevDataverse } from '../../local/dataverse';
import { retryAll, settleSyncError } from '../../shared/coupling/actions';
import { getCoupling, removeCoupling, syncErrorsPage, syncLogPage } from '../../shared/coupling/couplings';
import { rowIdFor, saveRecord } from '../../shared/coupling/records';
import { type ActionRequest, SYNC_ERROR_KINDS, type SyncErrorKind } from '../../shared/domain/coupling';
import { DomainError } from '../../shared/domain/errors';
import type { SyncContext } from '../../shared/operations/context';
import { getCustomer, getOperation } from '../../shared/operations/queries';
import { editFailedOperation } from '../../shared/operations/repair';
import { submitDelete, submitEdit } from '../../shared/operations/submit';
import type { RecordingDoorbell } from '../support';
import { createdCustomer, drain, setup, sync, writes } from './coupling-support';

/**
 * The repair actions of API.md's *Coupled data synchronization errors*, against Azurite and the development
 * Dataverse: every action on every error kind. Each case has its own customer, all brought to their error by the
 * same few runs, as a CRM user and a channel would: editing or deleting on one side or both.
 */
type Action = ActionRequest | { action: 'RemoveCoupling' };
const ACTIONS: Action[] = [
  { action: 'Synchronize', use: 'hq' },
  { action: 'Synchronize', use: 'crm' },
  { action: 'Retry' },
  { action: 'Restore' },
  { action: 'Delete' },
  { action: 'RemoveCoupling' },
];
const FITS: Record<SyncErrorKind, string[]> = {
  ModifiedInBoth: ['Synchronize', 'Retry', 'RemoveCoupling'],
  DeletedInCrm: ['Restore', 'Delete', 'RemoveCoupling'],
  DeletedInHq: ['Restore', 'Delete', 'RemoveCoupling'],
  MultipleMatches: ['Retry', 'RemoveCoupling'],
  Failed: ['Retry', 'RemoveCoupling'],
};
const nameOf = (a: Action) => ('use' in a ? `${a.action}(${a.use})` : a.action);

interface Case {
  kind: SyncErrorKind;
  action: Action;
  account: string;
  key: string;
  email: string;
}

let ctx: SyncContext;
let doorbell: RecordingDoorbell;
let crmUser: DynamicsWebApi;
let dv: DevDataverse;
const cases: Case[] = [];

const act = (c: Case, by = 'alice') =>
  c.action.action === 'RemoveCoupling'
    ? removeCoupling(ctx, c.account, by).then(() => ({}))
    : settleSyncError(ctx, c.account, c.action, by);

/** Everything an action could change: the record, its list entry, both apps, and HQ's operations. */
async function stateOf(c: Case) {
  const record = (await ctx.store.syncRecords.get(c.key))?.value;
  const hq = (await ctx.store.customers.getRecord(c.key))?.value;
  return {
    record,
    listed: (await syncErrorsPage(ctx, undefined, 1000)).items.filter((e) => e.customerAccount === c.account),
    hq,
    rows: dv.rows('contacts').filter((r) => r.emailaddress1 === c.email),
  };
}

const failsWith = async (promise: Promise<unknown>, code: string) => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected ${code}`).toBeInstanceOf(DomainError);
  expect((error as DomainError).code).toBe(code);
  return error as DomainError;
};

beforeAll(async () => {
  ({ ctx, doorbell, crmUser, dv } = await setup({}, 'file'));
  await sync(ctx); // change tracking starts
  const make = async (kind: SyncErrorKind, action: Action) => {
    const email = `${kind}.${nameOf(action)}.${Date.now()}@example.dk`.toLowerCase().replace(/[()]/g, '');
    if (kind === 'MultipleMatches') {
      for (const lastname of ['One', 'Two']) {
        await crmUser.create({ collection: 'contacts', data: { firstname: 'Ann', lastname, emailaddress1: email } });
      }
    }
    const customer = await createdCustomer(ctx, doorbell, { email });
    cases.push({ kind, action, email, account: customer.customerAccount, key: customer.asyncCustomerAccount! });
  };
  for (const kind of SYNC_ERROR_KINDS) for (const action of ACTIONS) await make(kind, action);
  await sync(ctx); // coupled by inserting, or MultipleMatches

  for (const c of cases) {
    const id = rowIdFor(c.key);
    if (c.kind === 'ModifiedInBoth') {
      await submitEdit(ctx, { channel: 'web', account: c.account, patch: { phone: '+45 1111' } });
      await crmUser.update({ collection: 'contacts', key: id, data: { telephone1: '+45 2222' } });
    } else if (c.kind === 'DeletedInCrm') {
      await crmUser.deleteRecord({ collection: 'contacts', key: id });
    } else if (c.kind === 'DeletedInHq') {
      await submitDelete(ctx, { account: c.account });
    } else if (c.kind === 'Failed') {
      await crmUser.update({ collection: 'contacts', key: id, data: { address1_country: 'Narnia' } });
    }
  }
  await drain(ctx, doorbell);
  await sync(ctx); // conflicts and deletions found; the CRM's bad country submitted to HQ
  await drain(ctx, doorbell); // … and refused there
  await sync(ctx); // … which makes the Failed errors
  const listed = (await syncErrorsPage(ctx, undefined, 1000)).items;
  for (const c of cases) {
    expect(listed.find((e) => e.customerAccount === c.account)?.kind, `${c.kind} for ${nameOf(c.action)}`).toBe(c.kind);
  }
}, 120_000);

describe('every action on every error kind', () => {
  it.each(SYNC_ERROR_KINDS.flatMap((kind) => ACTIONS.map((action) => [kind, nameOf(action)] as const)))(
    '%s × %s',
    async (kind, name) => {
      const c = cases.find((x) => x.kind === kind && nameOf(x.action) === name)!;
      const before = await stateOf(c);
      if (!FITS[kind].includes(c.action.action)) {
        const error = await failsWith(act(c), 'INVALID_STATE');
        expect(error.message).toContain(kind);
        expect(await stateOf(c)).toEqual(before);
        return;
      }
      const answer = await act(c);
      await drain(ctx, doorbell);
      const after = await stateOf(c);
      expect(after.listed).toEqual([]); // settled, or cleared for the next run
      const { items: log } = await syncLogPage(ctx, c.account, 5);
      expect(log[0]).toMatchObject({ by: 'alice' });
      await expectOutcome(c, answer, after);
    },
  );
});

/** What each fitting action promises, in both apps (after HQ applied what it submitted). */
async function expectOutcome(c: Case, answer: { operationId?: string }, after: Awaited<ReturnType<typeof stateOf>>) {
  const id = rowIdFor(c.key);
  const hq = () => getCustomer(ctx, c.account);
  switch (`${c.kind} ${nameOf(c.action)}`) {
    case 'ModifiedInBoth Synchronize(hq)':
      expect(dv.row('contacts', id)).toMatchObject({ telephone1: '+45 1111' });
      expect((await hq()).customer.phone).toBe('+45 1111');
      expect(answer).toEqual({});
      break;
    case 'ModifiedInBoth Synchronize(crm)': {
      expect((await hq()).customer.phone).toBe('+45 2222');
      const op = (await getOperation(ctx, answer.operationId!)).value;
      expect(op).toMatchObject({
        channel: 'crm',
        status: 'Synced',
        history: expect.arrayContaining([expect.objectContaining({ by: 'alice', status: 'Pending' })]),
      });
      expect(dv.row('contacts', id)).toMatchObject({ telephone1: '+45 2222' });
      break;
    }
    case 'DeletedInCrm Restore':
      expect(dv.row('contacts', id)).toMatchObject({ emailaddress1: c.email });
      expect(await getCoupling(ctx, c.account)).toMatchObject({ crmId: id, lastSyncResult: 'Success' });
      break;
    case 'DeletedInCrm Delete':
      expect((await getOperation(ctx, answer.operationId!)).value).toMatchObject({ type: 'Delete', channel: 'crm' });
      await failsWith(hq(), 'NOT_FOUND');
      await failsWith(getCoupling(ctx, c.account), 'NOT_FOUND');
      break;
    case 'DeletedInHq Restore':
      expect((await getOperation(ctx, answer.operationId!)).value).toMatchObject({ type: 'Create', channel: 'crm' });
      expect(await hq()).toMatchObject({ customerAccount: c.account, customer: { email: c.email } });
      expect(await getCoupling(ctx, c.account)).toMatchObject({ crmId: id });
      break;
    case 'DeletedInHq Delete':
      expect(dv.row('contacts', id)).toBeUndefined();
      await failsWith(getCoupling(ctx, c.account), 'NOT_FOUND');
      break;
    case 'ModifiedInBoth Retry':
    case 'MultipleMatches Retry':
    case 'Failed Retry':
      // Cleared and no longer skipped; nothing written to either app: the next run takes the record again.
      expect(after.record).toMatchObject({ skipped: false, repeats: 0 });
      expect(after.record?.error).toBeUndefined();
      expect(await ctx.store.crmSyncState.awaiting()).toContain(c.key);
      break;
    default: // RemoveCoupling
      expect(c.action.action).toBe('RemoveCoupling');
      expect(after.record).toMatchObject({ decoupled: true });
      await failsWith(getCoupling(ctx, c.account), 'NOT_FOUND');
  }
}

describe('after the actions', () => {
  it('a run finds the settled records in sync, the retried ones with their error again, the uncoupled ones alone', async () => {
    const before = writes(dv);
    await sync(ctx);
    await drain(ctx, doorbell);
    await sync(ctx);
    const listed = (await syncErrorsPage(ctx, undefined, 1000)).items;
    const errorOf = (c: Case) => listed.find((e) => e.customerAccount === c.account)?.kind;
    for (const c of cases) {
      const fitting = FITS[c.kind].includes(c.action.action);
      // Retried errors that nobody fixed come back (once: not yet skipped); unfitting actions changed nothing.
      const expected = !fitting || c.action.action === 'Retry' ? c.kind : undefined;
      expect(errorOf(c), `${c.kind} × ${nameOf(c.action)}`).toBe(expected);
    }
    // The runs rewrote nothing the actions settled: the only CRM writes are none at all.
    expect(writes(dv)).toBe(before);
  });
});

/** A coupled customer whose phone was changed in HQ and in the CRM: a ModifiedInBoth error. */
async function conflicted() {
  const env = await setup();
  await sync(env.ctx);
  const customer = await createdCustomer(env.ctx, env.doorbell);
  await sync(env.ctx);
  await submitEdit(env.ctx, { channel: 'web', account: customer.customerAccount, patch: { phone: '+45 1111' } });
  await drain(env.ctx, env.doorbell);
  const id = rowIdFor(customer.asyncCustomerAccount!);
  await env.crmUser.update({ collection: 'contacts', key: id, data: { telephone1: '+45 2222' } });
  await sync(env.ctx);
  return { ...env, customer, id };
}

describe('an action against apps that changed since the error', () => {
  it('Synchronize overwrites nothing when a field changed again, and shows the error with the current values', async () => {
    const { ctx: c2, crmUser: user, dv: dv2, customer, id } = await conflicted();
    // The CRM user changes the phone again after the error was recorded.
    await user.update({ collection: 'contacts', key: id, data: { telephone1: '+45 3333' } });

    const error = await failsWith(
      settleSyncError(c2, customer.customerAccount, { action: 'Synchronize', use: 'hq' }, 'alice'),
      'SYNC_ERROR_CHANGED',
    );
    expect(error.message).toContain('Modified in both apps');
    expect(dv2.row('contacts', id)).toMatchObject({ telephone1: '+45 3333' });
    expect((await syncErrorsPage(c2, undefined, 10)).items).toEqual([
      expect.objectContaining({
        kind: 'ModifiedInBoth',
        differences: [{ field: 'phone', crmField: 'telephone1', hqValue: '+45 1111', crmValue: '+45 3333' }],
      }),
    ]);
    // Looked at again, the operator's choice goes through.
    await settleSyncError(c2, customer.customerAccount, { action: 'Synchronize', use: 'hq' }, 'alice');
    expect(dv2.row('contacts', id)).toMatchObject({ telephone1: '+45 1111' });
  });

  it('Restore of a CRM row recreated meanwhile writes nothing and tells the operator', async () => {
    const { ctx: c2, doorbell: d2, crmUser: user, dv: dv2 } = await setup();
    await sync(c2);
    const customer = await createdCustomer(c2, d2);
    await sync(c2);
    const id = rowIdFor(customer.asyncCustomerAccount!);
    await user.deleteRecord({ collection: 'contacts', key: id });
    await sync(c2);
    await submitDelete(c2, { account: customer.customerAccount });
    await drain(c2, d2);
    const before = writes(dv2);
    await failsWith(
      settleSyncError(c2, customer.customerAccount, { action: 'Restore' }, 'alice'),
      'SYNC_ERROR_CHANGED',
    );
    expect(writes(dv2)).toBe(before);
    // Deleted in both apps now: the coupling is gone, and so is the error.
    expect((await syncErrorsPage(c2, undefined, 10)).items).toEqual([]);
  });
});

describe('an action never overwrites what it did not see', () => {
  it('Synchronize(crm) while HQ has an edit accepted but not applied: refused, the edit kept', async () => {
    const { ctx: c2, customer } = await conflicted();
    // Accepted, not applied (its doorbell is not processed).
    await submitEdit(c2, { channel: 'web', account: customer.customerAccount, patch: { phone: '+45 9999' } });
    await failsWith(
      settleSyncError(c2, customer.customerAccount, { action: 'Synchronize', use: 'crm' }, 'alice'),
      'SYNC_ERROR_CHANGED',
    );
    const record = (await c2.store.customers.getRecord(customer.asyncCustomerAccount!))!.value;
    const ops = [];
    for (let seq = 1; seq < record.nextSeq; seq++)
      ops.push(await c2.store.customers.getOperationHead(record.customerKey, seq));
    expect(ops.filter((op) => op?.channel === 'crm')).toEqual([]);
  });

  it('Delete of a customer edited in HQ since its row was deleted: refused, the customer kept', async () => {
    const { ctx: c2, doorbell: d2, crmUser: user } = await setup();
    await sync(c2);
    const customer = await createdCustomer(c2, d2);
    await sync(c2);
    await user.deleteRecord({ collection: 'contacts', key: rowIdFor(customer.asyncCustomerAccount!) });
    await sync(c2);
    await submitEdit(c2, { channel: 'web', account: customer.customerAccount, patch: { phone: '+45 5555' } });
    await drain(c2, d2);
    await failsWith(settleSyncError(c2, customer.customerAccount, { action: 'Delete' }, 'alice'), 'SYNC_ERROR_CHANGED');
    await drain(c2, d2);
    expect((await getCustomer(c2, customer.customerAccount)).customer.phone).toBe('+45 5555');
    // Looked at again (the error now names the customer as it is), the operator's Delete goes through.
    expect((await syncErrorsPage(c2, 'DeletedInCrm', 10)).items).toHaveLength(1);
    await settleSyncError(c2, customer.customerAccount, { action: 'Delete' }, 'alice');
    await drain(c2, d2);
    await failsWith(getCustomer(c2, customer.customerAccount), 'NOT_FOUND');
  });

  it('a CRM edit between the action’s read and its write: nothing overwritten, the claim not left behind', async () => {
    const { ctx: c2, customer, id, crmUser: user, dv: dv2 } = await conflicted();
    // The CRM user saves just before the action's conditional write.
    const coupling = c2.coupling!;
    const sneaky = {
      ...coupling,
      crm: (deadline: number) => {
        const session = coupling.crm(deadline);
        return {
          ...session,
          get: session.get.bind(session),
          find: session.find.bind(session),
          changes: session.changes.bind(session),
          create: session.create.bind(session),
          remove: session.remove.bind(session),
          update: async (...args: Parameters<typeof session.update>) => {
            await user.update({ collection: 'contacts', key: id, data: { telephone1: '+45 7777' } });
            return session.update(...args);
          },
        };
      },
    };
    const c3 = { ...c2, coupling: sneaky };
    await failsWith(
      settleSyncError(c3, customer.customerAccount, { action: 'Synchronize', use: 'hq' }, 'alice'),
      'SYNC_ERROR_CHANGED',
    );
    expect(dv2.row('contacts', id)).toMatchObject({ telephone1: '+45 7777' });
    const record = (await c2.store.syncRecords.get(customer.asyncCustomerAccount!))!.value;
    expect(record.action?.done ?? true).toBe(true); // no claim left to lapse
    expect(record.error?.differences).toEqual([
      { field: 'phone', crmField: 'telephone1', hqValue: '+45 1111', crmValue: '+45 7777' },
    ]);
  });

  it('the sync job leaves a record being settled alone, and looks at it again at its next run', async () => {
    const { ctx: c2, customer, crmUser: user, id } = await conflicted();
    const stored = (await c2.store.syncRecords.get(customer.asyncCustomerAccount!))!;
    const claim = {
      action: 'Synchronize' as const,
      use: 'hq' as const,
      by: 'alice',
      at: new Date().toISOString(),
      failedOn: stored.value.error!.failedOn,
      done: false,
    };
    await c2.store.syncRecords.save({ ...stored.value, action: claim }, stored.etag);
    await user.update({ collection: 'contacts', key: id, data: { address1_city: 'Vejle' } });
    await sync(c2);
    expect((await c2.store.syncRecords.get(customer.asyncCustomerAccount!))!.value.action).toEqual(claim);
    expect(await c2.store.crmSyncState.awaiting()).toContain(customer.asyncCustomerAccount);
  });
});

describe('actions are done once', () => {
  const crmOperations = async (c: SyncContext, key: string) => {
    const record = (await c.store.customers.getRecord(key))!.value;
    const ops = [];
    for (let seq = 1; seq < record.nextSeq; seq++) ops.push(await c.store.customers.getOperationHead(key, seq));
    return ops.filter((op) => op?.channel === 'crm');
  };

  it('a repeated request gets the first answer and does nothing more', async () => {
    const { ctx: c2, customer } = await conflicted();
    const first = await settleSyncError(c2, customer.customerAccount, { action: 'Synchronize', use: 'crm' }, 'alice');
    const again = await settleSyncError(c2, customer.customerAccount, { action: 'Synchronize', use: 'crm' }, 'alice');
    expect(again).toEqual(first);
    expect(await crmOperations(c2, customer.asyncCustomerAccount!)).toHaveLength(1);
    // Another action on the settled record: there is no error to act on.
    await failsWith(settleSyncError(c2, customer.customerAccount, { action: 'Retry' }, 'bob'), 'NOT_FOUND');
  });

  it('a choice made on an error that is no longer the record’s is refused; its repeat after success is answered', async () => {
    const { ctx: c2, doorbell: d2, customer, crmUser: user, id, dv: dv2 } = await conflicted();
    const [seen] = (await syncErrorsPage(c2, undefined, 10)).items;
    const choice = { action: 'Synchronize' as const, use: 'hq' as const, failedOn: seen!.failedOn };
    await failsWith(
      settleSyncError(c2, customer.customerAccount, { ...choice, failedOn: '2020-01-01T00:00:00.000Z' }, 'alice'),
      'SYNC_ERROR_CHANGED',
    );
    const first = await settleSyncError(c2, customer.customerAccount, choice, 'alice');
    // The apps diverge again and a run records a new conflict; the first request, repeated, is answered as it was.
    await user.update({ collection: 'contacts', key: id, data: { telephone1: '+45 4444' } });
    await submitEdit(c2, { channel: 'web', account: customer.customerAccount, patch: { phone: '+45 3333' } });
    await drain(c2, d2);
    await sync(c2);
    const before = writes(dv2);
    expect(await settleSyncError(c2, customer.customerAccount, choice, 'alice')).toEqual(first);
    expect(writes(dv2)).toBe(before);
    expect((await syncErrorsPage(c2, undefined, 10)).items).toEqual([
      expect.objectContaining({ kind: 'ModifiedInBoth' }),
    ]);
  });

  it('two operators choosing different versions at once: one wins, the other is told, one app is written', async () => {
    const { ctx: c2, customer, dv: dv2 } = await conflicted();
    const before = writes(dv2);
    const results = await Promise.allSettled([
      settleSyncError(c2, customer.customerAccount, { action: 'Synchronize', use: 'hq' }, 'alice'),
      settleSyncError(c2, customer.customerAccount, { action: 'Synchronize', use: 'crm' }, 'bob'),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(['INVALID_STATE', 'NOT_FOUND']).toContain(((lost[0] as PromiseRejectedResult).reason as DomainError).code);
    const crmWrites = writes(dv2) - before;
    const hqOps = (await crmOperations(c2, customer.asyncCustomerAccount!)).length;
    // Exactly one of the two happened: the CRM row written with HQ's phone, or HQ sent the CRM's.
    expect(crmWrites + hqOps).toBe(1);
  });

  it('two operators doing the same at once: one HQ operation', async () => {
    const { ctx: c2, customer } = await conflicted();
    await Promise.allSettled(
      ['alice', 'bob', 'carol'].map((by) =>
        settleSyncError(c2, customer.customerAccount, { action: 'Synchronize', use: 'crm' }, by),
      ),
    );
    expect(await crmOperations(c2, customer.asyncCustomerAccount!)).toHaveLength(1);
    expect((await syncErrorsPage(c2, undefined, 10)).items).toEqual([]);
  });
});

describe('Retry of an HQ operation the CRM change failed in', () => {
  it('retries the operation: fixed by an operator, it applies, and the record is in sync', async () => {
    const { ctx: c2, doorbell: d2, crmUser: user } = await setup();
    await sync(c2);
    const customer = await createdCustomer(c2, d2);
    await sync(c2);
    await user.update({
      collection: 'contacts',
      key: rowIdFor(customer.asyncCustomerAccount!),
      data: { address1_country: 'Narnia' },
    });
    await sync(c2);
    await drain(c2, d2);
    await sync(c2);
    const [error] = (await syncErrorsPage(c2, 'Failed', 10)).items;
    expect(error?.message).toContain('HQ refused the change from the CRM');
    const record = (await c2.store.syncRecords.get(customer.asyncCustomerAccount!))!.value;
    const failed = await getOperation(c2, record.awaiting!);
    await editFailedOperation(c2, record.awaiting!, failed.etag, { 'address.countryRegion': 'DK' }, 'alice');

    await settleSyncError(c2, customer.customerAccount, { action: 'Retry' }, 'alice');
    await drain(c2, d2);
    expect((await getOperation(c2, record.awaiting!)).value.status).toBe('Synced');
    await sync(c2);
    expect((await syncErrorsPage(c2, undefined, 10)).items).toEqual([]);
    expect(await getCoupling(c2, customer.customerAccount)).toMatchObject({ lastSyncResult: 'Success' });
  });
});

describe('Retry all', () => {
  it('retries thousands of errors of one kind and leaves the other kinds', async () => {
    const { ctx: c2 } = await setup();
    const at = new Date().toISOString();
    const records = Array.from({ length: 2010 }, (_, i) => ({
      customerKey: `K${String(i).padStart(8, '0')}`,
      crmTable: 'contacts' as const,
      crmId: rowIdFor(`K${i}`),
      base: {},
      repeats: 2,
      skipped: true,
      error: {
        kind: (i < 2000 ? 'Failed' : 'MultipleMatches') as SyncErrorKind,
        message: 'The CRM refused a value.',
        failedOn: at,
        hqExists: true,
        crmExists: true,
      },
    }));
    for (let i = 0; i < records.length; i += 50) {
      await Promise.all(records.slice(i, i + 50).map((r) => saveRecord(c2, r)));
    }

    const started = performance.now();
    const { accepted } = await retryAll(c2, 'Failed', 'alice');
    const ms = performance.now() - started;
    console.log(`Retry all: ${accepted} errors in ${Math.round(ms)} ms`);
    expect(accepted).toBe(2000);
    const left = await syncErrorsPage(c2, undefined, 1000);
    expect(left.items.map((e) => e.kind)).toEqual(Array(10).fill('MultipleMatches'));
    const sample = (await c2.store.syncRecords.get('K00001234'))!.value;
    expect(sample).toMatchObject({ skipped: false, repeats: 0, action: { action: 'Retry', by: 'alice' } });
    expect(sample.error).toBeUndefined();
    expect(await c2.store.crmSyncState.awaiting()).toHaveLength(2000);
    // Again: nothing left of that kind.
    expect(await retryAll(c2, 'Failed', 'alice')).toEqual({ accepted: 0 });
  }, 120_000);
});
