import { TableClient, type TableServiceClientOptions } from '@azure/data-tables';
import { describe, expect, inject, it } from 'vitest';

import { hasStatus } from '../../shared/storage/tables';
import { WriteBatcher } from '../../shared/storage/write-batcher';
import { uniqueName } from '../support';

type Policy = NonNullable<TableServiceClientOptions['additionalPolicies']>[number]['policy'];

/** A table on Azurite and the number of HTTP requests made to it. */
async function countedTable() {
  const counter = { requests: 0 };
  const policy: Policy = {
    name: 'count',
    sendRequest: (request, next) => {
      counter.requests++;
      return next(request);
    },
  };
  const table = TableClient.fromConnectionString(inject('storageConnectionString'), uniqueName('wb'), {
    allowInsecureConnection: true,
    additionalPolicies: [{ policy, position: 'perCall' }],
  });
  await table.createTable();
  counter.requests = 0;
  return { table, counter };
}

describe('group commit of writes to shared partitions', () => {
  it('concurrent writes to one partition go in a few transactions, and every caller gets its ETag', async () => {
    const { table, counter } = await countedTable();
    const writer = new WriteBatcher(table);
    const etags = await Promise.all(
      Array.from({ length: 150 }, (_, i) => writer.upsert({ partitionKey: 'p', rowKey: `r${i}`, n: i })),
    );
    // The first goes alone at once; the rest queue behind it and go 100 to a transaction.
    expect(counter.requests).toBeLessThanOrEqual(3);
    expect(etags.every((e) => typeof e === 'string' && e.length > 0)).toBe(true);
    const stored = [];
    for await (const e of table.listEntities<{ n: number }>()) stored.push(e.n);
    expect(stored.sort((a, b) => a - b)).toEqual(Array.from({ length: 150 }, (_, i) => i));
  });

  it('an action that fails fails only its own caller', async () => {
    const { table } = await countedTable();
    await table.createEntity({ partitionKey: 'p', rowKey: 'taken', n: 0 });
    const writer = new WriteBatcher(table);
    const results = await Promise.allSettled([
      writer.upsert({ partitionKey: 'p', rowKey: 'first', n: 1 }),
      writer.create({ partitionKey: 'p', rowKey: 'a', n: 2 }),
      writer.create({ partitionKey: 'p', rowKey: 'taken', n: 3 }),
      writer.delete('p', 'missing'),
      writer.create({ partitionKey: 'p', rowKey: 'b', n: 4 }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled']);
    const reasons = results.filter((r) => r.status === 'rejected').map((r) => r.reason as unknown);
    expect(hasStatus(reasons[0], 409)).toBe(true);
    expect(hasStatus(reasons[1], 404)).toBe(true);
    expect((await table.getEntity<{ n: number }>('p', 'taken')).n).toBe(0);
    expect((await table.getEntity<{ n: number }>('p', 'b')).n).toBe(4);
  });

  it('writes of the same entity are applied in the order they were made', async () => {
    const { table } = await countedTable();
    const writer = new WriteBatcher(table);
    await Promise.all([
      writer.upsert({ partitionKey: 'p', rowKey: 'busy', n: 0 }),
      ...Array.from({ length: 5 }, (_, i) => writer.upsert({ partitionKey: 'p', rowKey: 'same', n: i + 1 })),
      writer.delete('p', 'busy'),
    ]);
    expect((await table.getEntity<{ n: number }>('p', 'same')).n).toBe(5);
    await expect(table.getEntity('p', 'busy')).rejects.toMatchObject({ statusCode: 404 });
  });
  it('conditional deletes go together, and a stale ETag fails only its own caller', async () => {
    const { table, counter } = await countedTable();
    const etags: string[] = [];
    for (let i = 0; i < 4; i++)
      etags.push((await table.createEntity({ partitionKey: 'p', rowKey: `r${i}`, n: i })).etag!);
    const writer = new WriteBatcher(table);
    counter.requests = 0;
    await Promise.all([
      writer.upsert({ partitionKey: 'p', rowKey: 'first', n: 0 }),
      writer.deleteIf('p', 'r0', etags[0]!),
      writer.deleteIf('p', 'r1', etags[1]!),
    ]);
    // The first goes alone at once; both deletes in one transaction.
    expect(counter.requests).toBe(2);
    await expect(table.getEntity('p', 'r0')).rejects.toMatchObject({ statusCode: 404 });
    await expect(table.getEntity('p', 'r1')).rejects.toMatchObject({ statusCode: 404 });

    // r3 is marked again after its ETag was read: its delete must not remove the new mark.
    await table.updateEntity({ partitionKey: 'p', rowKey: 'r3', n: 33 }, 'Replace');
    const results = await Promise.allSettled([
      writer.upsert({ partitionKey: 'p', rowKey: 'first', n: 1 }),
      writer.deleteIf('p', 'r2', etags[2]!),
      writer.deleteIf('p', 'r3', etags[3]!),
      writer.deleteIf('p', 'gone', etags[0]!),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected']);
    const reasons = results.filter((r) => r.status === 'rejected').map((r) => r.reason as unknown);
    expect(hasStatus(reasons[0], 412)).toBe(true);
    expect(hasStatus(reasons[1], 404)).toBe(true);
    await expect(table.getEntity('p', 'r2')).rejects.toMatchObject({ statusCode: 404 });
    expect((await table.getEntity<{ n: number }>('p', 'r3')).n).toBe(33);
  });
});
