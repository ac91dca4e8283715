import { describe, expect, it } from 'vitest';

import { accepted, failed } from '../../shared/domain/lifecycle';
import type { CustomerRecord, Operation } from '../../shared/domain/operation';
import type { OperationIndex, PendingIndex } from '../../shared/domain/ports';
import type { SyncContext } from '../../shared/operations/context';
import { editFailedOperation, resyncOperation } from '../../shared/operations/repair';
import { MemoryCustomerStore, memoryStore } from '../fakes';
import { RecordingDoorbell } from '../support';

/** The repair use cases over in-memory ports: no Azurite, and races staged exactly. */
const KEY = 'ASYNC-0000000001';
const AT = '2026-11-30T10:00:00.000Z';

async function setUp(status: 'Failed' | 'Synced' = 'Failed') {
  const customers = new MemoryCustomerStore();
  const writes: string[] = [];
  const operationIndex: Partial<OperationIndex> = {
    put: async (op) => void writes.push(`index ${op.status}`),
    putFailed: async (op) => void writes.push(`failed index ${op.status}`),
    update: async (op, previous) => void writes.push(`index ${op.status} (was ${previous?.code ?? 'none'})`),
  };
  const pending: Partial<PendingIndex> = { mark: async () => (writes.push('pending'), 'W/"pending"') };
  const updateOperation = customers.updateOperation.bind(customers);
  customers.updateOperation = async (op) => {
    const etag = await updateOperation(op);
    writes.push(`operation ${op.value.status}`);
    return etag;
  };
  const doorbell = new RecordingDoorbell();
  const ctx = {
    store: memoryStore({
      customers,
      operationIndex: operationIndex as OperationIndex,
      pending: pending as PendingIndex,
    }),
    doorbell,
    clock: () => new Date(AT),
  } as unknown as SyncContext;

  const submittedOp = accepted(
    {
      customerKey: KEY,
      seq: 1,
      type: 'Create',
      channel: 'web',
      changes: {
        customerType: 'Person',
        firstName: 'A',
        lastName: 'B',
        email: 'a@b.dk',
        customerGroup: 'Nope',
        currency: 'DKK',
      },
      requestId: 'r',
      asyncCustomerAccount: KEY,
    },
    AT,
  );
  const op: Operation =
    status === 'Failed'
      ? failed(submittedOp, { code: 'CUSTOMER_GROUP_NOT_FOUND', message: 'No such group.' }, submittedOp.grid, AT)
      : { ...submittedOp, status: 'Synced' };
  const record: CustomerRecord = {
    customerKey: KEY,
    asyncCustomerAccount: KEY,
    version: 0,
    nextSeq: 2,
    appliedThrough: 0,
  };
  await customers.insertNew(record, op);
  const etag = (await customers.getOperation(KEY, 1))!.etag;
  return { ctx, customers, writes, doorbell, etag };
}

/** Someone else writes the operation once, between a use case's read and its write. */
function raceOnce(customers: MemoryCustomerStore, change: (op: Operation) => void) {
  customers.beforeWrite = () => {
    customers.beforeWrite = undefined;
    customers.changeOperation(KEY, 1, change);
  };
}

describe('resyncing an operation', () => {
  it('makes a Failed operation Pending, lists the customer as pending before the write, indexes after, and rings', async () => {
    const { ctx, customers, writes, doorbell } = await setUp();
    expect(await resyncOperation(ctx, `${KEY}-1`, 'operator')).toBeUndefined();
    expect((await customers.getOperation(KEY, 1))!.value.status).toBe('Pending');
    expect(writes).toEqual(['pending', 'operation Pending', 'index Pending (was CUSTOMER_GROUP_NOT_FOUND)']);
    expect(doorbell.rung).toEqual([{ customerKey: KEY, pending: 'W/"pending"', at: undefined }]);
  });

  it('reads again when the operation changed between its read and its write, and resyncs once', async () => {
    const { ctx, customers } = await setUp();
    raceOnce(customers, (op) => op.history.push({ at: AT, status: 'Failed', detail: 'someone else' }));
    expect(await resyncOperation(ctx, `${KEY}-1`, 'operator')).toBeUndefined();
    const { history } = (await customers.getOperation(KEY, 1))!.value;
    expect(history.map((h) => h.detail)).toEqual([
      'Submitted by channel web.',
      'No such group.',
      'someone else',
      'Resync requested.',
    ]);
  });

  it('says why it skips an operation that is not Failed or does not exist', async () => {
    const { ctx } = await setUp('Synced');
    expect(await resyncOperation(ctx, `${KEY}-1`, 'operator')).toBe('NOT_FAILED (Synced)');
    expect(await resyncOperation(ctx, `${KEY}-9`, 'operator')).toBe('NOT_FOUND');
  });
});

describe('editing a Failed operation', () => {
  it('writes the failed index before the operation and the hour entry after it', async () => {
    const { ctx, customers, writes, etag } = await setUp();
    const result = await editFailedOperation(ctx, `${KEY}-1`, etag, { customerGroup: 'Retail' }, 'operator');
    expect(result.etag).not.toBe(etag);
    expect((await customers.getOperation(KEY, 1))!.value.changes.customerGroup).toBe('Retail');
    expect(writes).toEqual(['failed index Failed', 'operation Failed', 'index Failed']);
  });

  it('is a 412 when the ETag is stale, or the operation changes before the edit lands', async () => {
    const { ctx, customers, etag } = await setUp();
    await expect(editFailedOperation(ctx, `${KEY}-1`, 'W/"0"', { phone: '1' }, 'op')).rejects.toMatchObject({
      code: 'ETAG_MISMATCH',
    });
    raceOnce(customers, (op) => (op.changes.phone = 'theirs'));
    await expect(editFailedOperation(ctx, `${KEY}-1`, etag, { phone: 'mine' }, 'op')).rejects.toMatchObject({
      code: 'ETAG_MISMATCH',
    });
    expect((await customers.getOperation(KEY, 1))!.value.changes.phone).toBe('theirs');
  });

  it('is a 409 for an operation that is not Failed', async () => {
    const { ctx, etag } = await setUp('Synced');
    await expect(editFailedOperation(ctx, `${KEY}-1`, etag, { phone: '1' }, 'op')).rejects.toMatchObject({
      code: 'INVALID_STATE',
    });
  });
});
