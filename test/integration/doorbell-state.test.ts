import { createHmac, randomBytes } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import type { Doorbell } from '../../shared/domain/doorbell';
import type { Unapplied } from '../../shared/domain/ports';
import type { SyncContext } from '../../shared/operations/context';
import { handleDoorbell } from '../../shared/operations/doorbell-handler';
import { getCustomer, getOperation, readCustomerUpdates } from '../../shared/operations/queries';
import { submitCreate, submitEdit } from '../../shared/operations/submit';
import { person, type RecordingDoorbell, testContext } from '../support';

/** The context, and how many times processing read a customer's unapplied operations from storage. */
async function counted() {
  const { ctx, doorbell } = await testContext();
  const reads = { count: 0 };
  const readUnapplied = ctx.store.customers.readUnapplied.bind(ctx.store.customers);
  ctx.store.customers.readUnapplied = (...args) => {
    reads.count++;
    return readUnapplied(...args);
  };
  return { ctx, doorbell, reads };
}

const lastRung = (doorbell: RecordingDoorbell): Doorbell => {
  const { at: _, ...d } = doorbell.rung.at(-1)!;
  return d;
};
const deliver = (ctx: SyncContext, d: Doorbell) => handleDoorbell(ctx, d, { messageId: 'm' });

describe('a doorbell that carries what its submit wrote', () => {
  it('is applied without reading the customer: a create and an edit', async () => {
    const { ctx, doorbell, reads } = await counted();
    const create = await submitCreate(ctx, { channel: 'web', customer: person({ firstName: 'Ann' }) });
    const created = lastRung(doorbell);
    expect(created).toMatchObject({ state: expect.any(String), sig: expect.any(String) });
    expect(await deliver(ctx, created)).toMatchObject({ applied: 1 });
    const account = create.asyncCustomerAccount!;
    const edit = await submitEdit(ctx, { channel: 'web', account, patch: { firstName: 'Anna' } });
    expect(await deliver(ctx, lastRung(doorbell))).toMatchObject({ applied: 1 });

    expect(reads.count).toBe(0);
    expect((await getOperation(ctx, edit.operationId)).value.status).toBe('Synced');
    expect((await getCustomer(ctx, account)).customer.firstName).toBe('Anna');
  });

  it('is ignored unless this service signed it: the stored operation is applied, not the forged one', async () => {
    const { ctx, doorbell, reads } = await counted();
    const create = await submitCreate(ctx, { channel: 'web', customer: person({ firstName: 'Ann' }) });
    const genuine = lastRung(doorbell);
    const known = JSON.parse(genuine.state!) as Unapplied;
    known.operations[0]!.value.changes.firstName = 'Mallory';
    const forged = JSON.stringify(known);
    const otherKey = createHmac('sha256', randomBytes(32)).update(`${genuine.customerKey}\n${forged}`);
    for (const d of [
      { ...genuine, state: forged }, // altered, with the genuine state's signature
      { ...genuine, state: forged, sig: otherKey.digest('base64url') }, // signed with another key
      { ...genuine, state: forged, sig: undefined }, // not signed
    ]) {
      await deliver(ctx, d);
    }
    expect(reads.count).toBe(3);
    const customer = await getCustomer(ctx, create.asyncCustomerAccount!);
    expect(customer.customer.firstName).toBe('Ann');
    expect(
      (await getOperation(ctx, create.operationId)).value.history.filter((h) => h.status === 'Synced'),
    ).toHaveLength(1);
  });

  it('gone stale (an edit since, a duplicate delivery) is read again: each operation applied once, in order', async () => {
    const { ctx, doorbell, reads } = await counted();
    const create = await submitCreate(ctx, { channel: 'web', customer: person() });
    const created = lastRung(doorbell);
    const account = create.asyncCustomerAccount!;
    const first = await submitEdit(ctx, { channel: 'web', account, patch: { phone: '+45 1' } });
    const second = await submitEdit(ctx, { channel: 'web', account, patch: { phone: '+45 2' } });
    // The create's state went stale with the first edit; the edits' states are not whole (the create is unapplied).
    expect(lastRung(doorbell).state).toBeUndefined();
    expect(await deliver(ctx, created)).toMatchObject({ applied: 3 });
    expect(await deliver(ctx, created)).toMatchObject({ applied: 0 }); // a duplicate, later
    expect(reads.count).toBeGreaterThanOrEqual(2);

    const customer = await getCustomer(ctx, account);
    expect(customer.customer.phone).toBe('+45 2');
    expect(customer.version).toBe(3);
    for (const id of [create.operationId, first.operationId, second.operationId]) {
      const op = (await getOperation(ctx, id)).value;
      expect(op.history.filter((h) => h.status === 'Synced')).toHaveLength(1);
    }
    const feedCtx = { ...ctx, clock: () => new Date(Date.now() + 5000) };
    expect((await readCustomerUpdates(feedCtx, undefined)).items.map((i) => i.customer.phone)).toEqual([
      undefined,
      '+45 1',
      '+45 2',
    ]);
  });
});
