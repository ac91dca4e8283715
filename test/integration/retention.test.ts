import { describe, expect, it } from 'vitest';

import { runJob } from '../../shared/jobs';
import { listOperations } from '../../shared/operations/list';
import { processCustomer } from '../../shared/operations/process';
import { getOperation, readCustomerUpdates } from '../../shared/operations/queries';
import { submitCreate } from '../../shared/operations/submit';
import { person, testContext } from '../support';

describe('audit retention', () => {
  it('deletes Synced operations older than the retention period but never Pending or Failed ones', async () => {
    const { ctx } = testContext();
    const longAgo = { ...ctx, clock: () => new Date(Date.now() - 100 * 86_400_000) };
    const old = await submitCreate(longAgo, { channel: 'web', customer: person() });
    await processCustomer(longAgo, old.asyncCustomerAccount!);
    const oldFailed = await submitCreate(longAgo, { channel: 'web', customer: person({ customerGroup: 'Nope' }) });
    await processCustomer(longAgo, oldFailed.asyncCustomerAccount!);
    const oldPending = await submitCreate(longAgo, { channel: 'pos-1', customer: person() });
    const recent = await submitCreate(ctx, { channel: 'web', customer: person() });
    await processCustomer(ctx, recent.asyncCustomerAccount!);

    const run = await runJob(ctx, 'audit-retention');
    expect(run.counts).toMatchObject({
      operationsDeleted: 1,
      operationsKept: 2,
      indexHoursDropped: 0,
      feedEntriesDeleted: 1,
    });

    await expect(getOperation(ctx, old.operationId)).rejects.toMatchObject({ code: 'OPERATION_NOT_FOUND' });
    expect((await getOperation(ctx, oldFailed.operationId)).value.status).toBe('Failed');
    expect((await getOperation(ctx, oldPending.operationId)).value.status).toBe('Pending');
    expect((await getOperation(ctx, recent.operationId)).value.status).toBe('Synced');
    const from = new Date(Date.now() - 120 * 86_400_000).toISOString();
    const listed = await listOperations(ctx, { fields: [], from }, 100);
    expect(listed.items.map((o) => o.operationId).sort()).toEqual(
      [oldFailed.operationId, oldPending.operationId, recent.operationId].sort(),
    );
    const feed = await readCustomerUpdates({ ...ctx, clock: () => new Date(Date.now() + 5000) }, undefined);
    expect(feed.items.map((i) => i.asyncCustomerAccount)).toEqual([recent.asyncCustomerAccount]);

    // Once the failed and pending ones are gone too, the old day's index table is dropped.
    await processCustomer(ctx, oldPending.asyncCustomerAccount!);
    const again = await runJob(ctx, 'audit-retention');
    expect(again.counts).toMatchObject({ operationsKept: 1 });
  });
});
