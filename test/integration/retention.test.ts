import { TableClient } from '@azure/data-tables';
import { describe, expect, inject, it } from 'vitest';

import { runJob } from '../../shared/jobs';
import { listOperations } from '../../shared/operations/list';
import { processCustomer } from '../../shared/operations/process';
import { getOperation, readCustomerUpdates } from '../../shared/operations/queries';
import { submitCreate } from '../../shared/operations/submit';
import { openStore } from '../../shared/storage';
import { person, testContext, uniqueName } from '../support';

describe('audit retention', () => {
  it('deletes Synced operations older than the retention period but never Pending or Failed ones', async () => {
    const { ctx } = await testContext();
    const then = Date.now() - 100 * 86_400_000;
    const longAgo = { ...ctx, clock: () => new Date(then) };
    const evenLonger = { ...ctx, clock: () => new Date(then - 86_400_000) };
    const old = await submitCreate(longAgo, { channel: 'web', customer: person() });
    await processCustomer(longAgo, old.asyncCustomerAccount!);
    // Alone in its hour: once it is deleted, its hour's index table goes too.
    const older = await submitCreate(evenLonger, { channel: 'web', customer: person() });
    await processCustomer(evenLonger, older.asyncCustomerAccount!);
    await ctx.store.deadLetters.add({
      messageId: 'old',
      reason: 'r',
      body: 'b',
      receivedAt: new Date(then).toISOString(),
    });
    await ctx.store.deadLetters.add({ messageId: 'new', reason: 'r', body: 'b', receivedAt: new Date().toISOString() });
    const oldFailed = await submitCreate(longAgo, { channel: 'web', customer: person({ customerGroup: 'Nope' }) });
    await processCustomer(longAgo, oldFailed.asyncCustomerAccount!);
    const oldPending = await submitCreate(longAgo, { channel: 'pos-1', customer: person() });
    const recent = await submitCreate(ctx, { channel: 'web', customer: person() });
    await processCustomer(ctx, recent.asyncCustomerAccount!);

    const run = await runJob(ctx, 'audit-retention');
    expect(run.counts).toMatchObject({
      operationsDeleted: 2,
      operationsKept: 2,
      indexHoursDropped: 1,
      feedEntriesDeleted: 2,
      deadLettersDeleted: 1,
    });
    expect((await ctx.store.operationIndex.hours()).length).toBe(2); // the kept old hour and the recent one
    expect((await ctx.store.deadLetters.latest(10)).map((d) => d.messageId)).toEqual(['new']);
    await expect(getOperation(ctx, older.operationId)).rejects.toMatchObject({ code: 'OPERATION_NOT_FOUND' });

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

  it('entries written when index and feed buckets were ten seconds long are still listed, read and removed', async () => {
    const prefix = uniqueName();
    const connection = inject('storageConnectionString');
    const { ctx } = await testContext({ store: await openStore(connection, prefix) });
    const then = Date.now() - 100 * 86_400_000;
    const longAgo = { ...ctx, clock: () => new Date(then) };
    const old = await submitCreate(longAgo, { channel: 'web', customer: person() });
    await processCustomer(longAgo, old.asyncCustomerAccount!);
    // Moves every index and feed entry into its ten-second bucket, as the earlier version wrote them.
    const tenSecond = (partitionKey: string) => partitionKey.slice(0, partitionKey.startsWith('2') ? 18 : -1);
    const [hour] = await ctx.store.operationIndex.hours();
    for (const name of [`Ops${hour!}`, 'CustomerFeed']) {
      const table = TableClient.fromConnectionString(connection, prefix + name, { allowInsecureConnection: true });
      for await (const { etag: _, timestamp: __, ...entity } of table.listEntities()) {
        await table.createEntity({ ...entity, partitionKey: tenSecond(entity.partitionKey!), rowKey: entity.rowKey! });
        await table.deleteEntity(entity.partitionKey!, entity.rowKey!);
      }
    }
    const recent = await submitCreate(ctx, { channel: 'web', customer: person() });
    await processCustomer(ctx, recent.asyncCustomerAccount!);

    const from = new Date(then - 86_400_000).toISOString();
    const listed = await listOperations(ctx, { fields: [], from }, 100);
    expect(listed.items.map((o) => o.operationId)).toEqual([recent.operationId, old.operationId]);
    const channel = await listOperations(ctx, { fields: [], from, channel: 'web' }, 100);
    expect(channel.items.map((o) => o.operationId)).toEqual([recent.operationId, old.operationId]);
    // Read from a moment before the old entry, in the same ten seconds (a range starting at its second would miss it).
    const listedNearby = await listOperations(ctx, { fields: [], from, to: new Date(then + 1).toISOString() }, 100);
    expect(listedNearby.items.map((o) => o.operationId)).toEqual([old.operationId]);
    const justBefore = Buffer.from(JSON.stringify({ after: new Date(then - 1).toISOString() })).toString('base64url');
    const feed = await readCustomerUpdates({ ...ctx, clock: () => new Date(Date.now() + 5000) }, justBefore);
    expect(feed.items.map((i) => i.asyncCustomerAccount)).toEqual([
      old.asyncCustomerAccount,
      recent.asyncCustomerAccount,
    ]);

    // Keep the old hour's table (a Pending operation in it), so removing its entries one by one is what counts.
    await submitCreate(longAgo, { channel: 'pos-1', customer: person() });
    const run = await runJob(ctx, 'audit-retention');
    expect(run.counts).toMatchObject({ operationsDeleted: 1, operationsKept: 1, feedEntriesDeleted: 1 });
    const after = await listOperations(ctx, { fields: [], from, channel: 'web' }, 100);
    expect(after.items.map((o) => o.operationId)).toEqual([recent.operationId]);
  });
});
