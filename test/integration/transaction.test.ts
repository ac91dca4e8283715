import { RestError, TableClient, type TableEntity, type TransactionAction } from '@azure/data-tables';
import { describe, expect, inject, it } from 'vitest';

import { hasStatus, packJson } from '../../shared/storage/tables';
import { type Action, submitTransaction } from '../../shared/storage/transaction';
import { uniqueName } from '../support';

/** A table on Azurite, and the bodies of the `$batch` requests sent to it. */
async function recordedTable() {
  const batches: string[] = [];
  const table = TableClient.fromConnectionString(inject('storageConnectionString'), uniqueName('tx'), {
    allowInsecureConnection: true,
    additionalPolicies: [
      {
        position: 'perCall',
        policy: {
          name: 'record',
          sendRequest: (request, next) => {
            if (request.url.endsWith('$batch')) batches.push(String(request.body));
            return next(request);
          },
        },
      },
    ],
  });
  await table.createTable();
  return { table, batches };
}

/** Every kind of value the service stores, and some it might. */
const sample = (partitionKey: string, rowKey: string) => ({
  partitionKey,
  rowKey,
  text: 'Ånne Æbelø ✓ 𝄞 "quoted" \\ \n',
  ...packJson('attributes', { note: 'ø'.repeat(70_000), list: [1, 2, 3] }),
  count: 42,
  negative: -7,
  large: 2 ** 40,
  ratio: 0.25,
  whole: 3.0,
  flag: true,
  off: false,
  missing: undefined,
  nothing: null,
  at: new Date('2024-05-06T07:08:09.123Z'),
  big: 12_345_678_901_234_567n,
});

const withoutMetadata = (e: Record<string, unknown>) => {
  const { etag: _e, timestamp: _t, partitionKey: _p, 'odata.metadata': _m, ...rest } = e;
  return rest;
};

/** The batch body with its boundaries' ids and the partition key made alike. */
const normalized = (body: string, partitionKey: string) =>
  body.replace(/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}/g, 'ID').replaceAll(partitionKey, 'PK');

async function failure(promise: Promise<unknown>): Promise<RestError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(RestError);
    return error as RestError;
  }
  throw new Error('expected a failure');
}

describe('entity-group transactions over the table client', () => {
  it('send what the SDK sends and store the same entities', async () => {
    const { table, batches } = await recordedTable();
    const actions = (pk: string) => {
      return [
        ['create', sample(pk, 'created')],
        ['upsert', { partitionKey: pk, rowKey: 'replaced', n: 1, s: 'x' }, 'Replace'],
        ['upsert', { partitionKey: pk, rowKey: 'merged', n: 2 }, 'Merge'],
        ['update', { partitionKey: pk, rowKey: "it's %2F", n: 3 }, 'Replace'],
        ['update', { partitionKey: pk, rowKey: 'patched', added: 'yes' }],
        ['delete', { partitionKey: pk, rowKey: 'deleted' }],
      ] as const;
    };
    for (const pk of ['sdk', 'ours']) {
      for (const rowKey of ['merged', "it's %2F", 'patched', 'deleted']) {
        await table.createEntity({ partitionKey: pk, rowKey, kept: 'old' });
      }
    }
    const sdk = await table.submitTransaction(actions('sdk') as unknown as TransactionAction[]);
    const ours = await submitTransaction(table, actions('ours'));

    expect(normalized(batches[1]!, 'ours')).toBe(normalized(batches[0]!, 'sdk'));
    expect(ours.status).toBe(sdk.status);
    expect(ours.subResponses.map((r) => r.status)).toEqual(sdk.subResponses.map((r) => r.status));
    expect(ours.subResponses.map((r) => typeof r.etag)).toEqual([
      'string',
      'string',
      'string',
      'string',
      'string',
      'undefined',
    ]);
    const stored = async (pk: string) => {
      const rows: Record<string, unknown> = {};
      for await (const e of table.listEntities({ queryOptions: { filter: `PartitionKey eq '${pk}'` } })) {
        rows[e.rowKey!] = withoutMetadata(e);
      }
      return rows;
    };
    const written = await stored('ours');
    expect(written).toEqual(await stored('sdk'));
    expect(Object.keys(written).sort()).toEqual(["it's %2F", 'created', 'merged', 'patched', 'replaced'].sort());
    expect(written.created).toMatchObject({
      text: sample('', '').text,
      count: 42,
      ratio: 0.25,
      flag: true,
      off: false,
    });
    expect(written.created).not.toHaveProperty('missing');
    expect(written.created).not.toHaveProperty('nothing');
    expect(written.created).toMatchObject({ at: new Date('2024-05-06T07:08:09.123Z'), big: 12_345_678_901_234_567n });
    expect(written.patched).toEqual({ rowKey: 'patched', kept: 'old', added: 'yes' });
  });

  it('answer with ETags that a following conditional write can use', async () => {
    const { table } = await recordedTable();
    const created = await submitTransaction(table, [
      ['create', { partitionKey: 'p', rowKey: 'a', n: 1 }],
      ['create', { partitionKey: 'p', rowKey: 'b', n: 1 }],
    ]);
    const [a, b] = created.subResponses.map((r) => r.etag!);
    expect(a).toBe((await table.getEntity('p', 'a')).etag);
    const updated = await submitTransaction(table, [
      ['update', { partitionKey: 'p', rowKey: 'a', n: 2 }, 'Replace', { etag: a }],
      ['delete', { partitionKey: 'p', rowKey: 'b' }, { etag: b }],
    ]);
    expect((await table.getEntity<{ n: number }>('p', 'a')).n).toBe(2);
    await expect(table.getEntity('p', 'b')).rejects.toMatchObject({ statusCode: 404 });
    expect(updated.subResponses[0]!.etag).toBe((await table.getEntity('p', 'a')).etag);
  });

  it('fail as a whole with the failing action’s status, as the SDK does', async () => {
    const { table } = await recordedTable();
    const first = await table.createEntity({ partitionKey: 'p', rowKey: 'x', n: 1 });
    await table.updateEntity({ partitionKey: 'p', rowKey: 'x', n: 2 }, 'Replace');
    const stale = first.etag!;
    const fresh = (await table.getEntity('p', 'x')).etag;
    const landed = (): Action => ['create', { partitionKey: 'p', rowKey: 'never', n: 0 }];
    const cases: [number, string, Action][] = [
      [
        412,
        'UpdateConditionNotSatisfied',
        ['update', { partitionKey: 'p', rowKey: 'x', n: 9 }, 'Merge', { etag: stale }],
      ],
      [412, 'UpdateConditionNotSatisfied', ['delete', { partitionKey: 'p', rowKey: 'x' }, { etag: stale }]],
      [409, 'EntityAlreadyExists', ['create', { partitionKey: 'p', rowKey: 'x', n: 9 }]],
      [404, 'ResourceNotFound', ['delete', { partitionKey: 'p', rowKey: 'missing' }]],
      [404, 'ResourceNotFound', ['update', { partitionKey: 'p', rowKey: 'missing', n: 9 }, 'Replace']],
    ];
    for (const [status, code, action] of cases) {
      const ours = await failure(submitTransaction(table, [landed(), action]));
      expect(hasStatus(ours, status)).toBe(true);
      expect(ours.code).toBe(code);
      // The SDK cannot put an ETag on a delete; for the rest, it fails alike.
      if (!(action[0] === 'delete' && action[2])) {
        const sdk = await failure(table.submitTransaction([landed(), action] as TransactionAction[]));
        expect([ours.statusCode, ours.code, ours.message.split('\n')[0]]).toEqual([
          sdk.statusCode,
          sdk.code,
          sdk.message.split('\n')[0],
        ]);
      }
      await expect(table.getEntity('p', 'never')).rejects.toMatchObject({ statusCode: 404 });
    }
    const x = await table.getEntity<{ n: number }>('p', 'x');
    expect([x.n, x.etag]).toEqual([2, fresh]);
  });

  it('refuse actions on more than one partition', async () => {
    const { table } = await recordedTable();
    const entity = (partitionKey: string): TableEntity => ({ partitionKey, rowKey: 'r' });
    await expect(
      submitTransaction(table, [
        ['create', entity('a')],
        ['create', entity('b')],
      ]),
    ).rejects.toThrow(/same partitionKey/);
  });
});
