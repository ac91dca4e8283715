import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hostStopGraceMs, launchHost } from '../../local/host-process';
import { stopChild } from '../../local/processes';
import { person } from '../support';
import { eventually, type Stack, startStack } from './stack';

/** Two operators on one failure, and two host instances competing for one customer's doorbells. */
let stack: Stack;
let second: Awaited<ReturnType<typeof launchHost>> | undefined;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await Promise.all([
    second && stopChild(second.process, { name: 'second Functions host', graceMs: hostStopGraceMs }),
    stack?.stop(),
  ]);
});

const operation = async (id: string) => {
  const response = await stack.call('GET', `/operations/${id}`, { token: stack.token('Sync.Reader') });
  return { body: (await response.json()) as Record<string, any>, etag: response.headers.get('etag')! };
};

describe('concurrency', () => {
  it('two operators edit the same failed operation with the same ETag: exactly one wins, the other gets 412', async () => {
    const web = stack.token('Channel', 'web');
    const submitted = await stack.call('POST', '/channels/web/customers', {
      token: web,
      body: person({ customerGroup: 'Nope' }),
    });
    const { operationId } = (await submitted.json()) as { operationId: string };
    const failed = await eventually(async () => {
      const op = await operation(operationId);
      return op.body.status === 'Failed' ? op : undefined;
    });
    const operator = stack.token('Sync.Operator');
    const edit = (group: string) =>
      stack.call('PATCH', `/operations/${operationId}`, {
        token: operator,
        body: { attributes: { customerGroup: group } },
        headers: { 'If-Match': failed.etag },
      });
    const answers = await Promise.all([edit('Retail'), edit('Wholesale')]);
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([200, 412]);
    const loser = answers.find((a) => a.status === 412)!;
    expect(await loser.json()).toMatchObject({ code: 'ETAG_MISMATCH' });

    // The winner's value is the one kept, and the history has exactly one edit.
    const winner = answers.findIndex((a) => a.status === 200) === 0 ? 'Retail' : 'Wholesale';
    const after = await operation(operationId);
    expect(after.body.attributes).toContainEqual(expect.objectContaining({ name: 'customerGroup', newValue: winner }));
    expect(after.body.history.filter((h: { detail: string }) => h.detail.startsWith('Edited'))).toHaveLength(1);
  });

  it('two host instances process one customer at once: no lost update, each edit applied once, in order', async () => {
    // A second host on the same tables and queue: competing consumers, as two Functions instances on Azure.
    second = await launchHost(stack.settings);
    const web = stack.token('Channel', 'web');
    const created = (await (
      await stack.call('POST', '/channels/web/customers', { token: web, body: person({ phone: 'e0' }) })
    ).json()) as { operationId: string; asyncCustomerAccount: string };
    const account = created.asyncCustomerAccount;
    const EDITS = 40;
    // Edits through both hosts, eight at a time: every one rings a doorbell either instance may take.
    const urls = [stack.baseUrl, second.baseUrl];
    const ids: string[] = [];
    for (let batch = 0; batch < EDITS / 8; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const e = batch * 8 + i + 1;
          const response = await fetch(`${urls[e % 2]}/channels/web/customers/${account}`, {
            method: 'PATCH',
            headers: { Authorization: `Bearer ${web}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ attributes: { [`edit${e}`]: e } }),
          });
          expect(response.status).toBe(202);
          return ((await response.json()) as { operationId: string }).operationId;
        }),
      );
      ids.push(...answers);
    }
    const reader = stack.token('Sync.Reader');
    const customer = await eventually(
      async () => {
        const body = (await (await stack.call('GET', `/customers/${account}`, { token: reader })).json()) as {
          version: number;
          customer: { attributes: Record<string, number> };
        };
        return body.version === EDITS + 1 ? body : undefined;
      },
      20_000,
      'every edit to be applied',
    );
    // No lost update: each edit set its own attribute, and all of them are there.
    for (let e = 1; e <= EDITS; e++) expect(customer.customer.attributes[`edit${e}`]).toBe(e);
    // Each applied once, in sequence order.
    const applied = [];
    for (const id of [created.operationId, ...ids]) {
      const { body } = await operation(id);
      expect(body.history.filter((h: { status: string }) => h.status === 'Synced')).toHaveLength(1);
      applied.push({ seq: Number(id.split('-').at(-1)), at: body.history.at(-1).at as string });
    }
    applied.sort((a, b) => a.seq - b.seq);
    expect(applied.map((a) => a.at)).toEqual([...applied.map((a) => a.at)].sort());
  });
});
