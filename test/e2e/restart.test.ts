import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { person } from '../support';
import { eventually, type Stack, startStack } from './stack';

/**
 * A crash of the host in the middle of a stream of submissions: SIGKILL, no shutdown hook, requests and
 * queue messages in flight. Channels retry creates with their Idempotency-Key until they get an answer (as a
 * real channel would); an edit whose answer was lost is not retried (the channel cannot know whether it
 * landed), so it may or may not exist. After the restart, every operation that exists completes exactly once.
 */
let stack: Stack;
beforeAll(async () => {
  // A crashed round's feed marker holds feed readers back until the sync-pending job finishes it; in
  // production after 2 minutes, here after 2 seconds, so the test need not wait.
  stack = await startStack({ FEED_MARKER_STALE_SECONDS: '2' });
});
afterAll(() => stack?.stop());

const CUSTOMERS = 30;
const EDITS = 3;

describe('restart without loss', () => {
  it('SIGKILL mid-stream: every accepted operation completes once, in order; no customer twice', async () => {
    const web = stack.token('Channel', 'web');
    const reader = stack.token('Sync.Reader');
    let down = false;
    const accepted: { operationId: string; account: string; seq: number }[] = [];
    const lost: string[] = [];

    /** One channel client: a create (retried with its key until answered), then edits in order. */
    async function client(c: number) {
      const key = `restart-${c}-${Date.now()}`;
      const customer = person({ phone: 'p0' });
      let account: string | undefined;
      while (!account) {
        try {
          const response = await stack.call('POST', '/channels/web/customers', {
            token: web,
            body: customer,
            headers: { 'Idempotency-Key': key },
          });
          if (response.status === 202) {
            const body = (await response.json()) as { operationId: string; asyncCustomerAccount: string };
            account = body.asyncCustomerAccount;
            accepted.push({ operationId: body.operationId, account, seq: 1 });
          } else {
            expect([500, 503], await response.text()).toContain(response.status);
          }
        } catch {
          // connection refused or reset: the host is down; retry with the same key
        }
        if (!account) await new Promise((r) => setTimeout(r, 50));
      }
      for (let e = 1; e <= EDITS; e++) {
        for (;;) {
          while (down) await new Promise((r) => setTimeout(r, 20));
          try {
            const response = await stack.call('PATCH', `/channels/web/customers/${account}`, {
              token: web,
              body: { phone: `p${e}` },
            });
            if (response.status === 202) {
              const { operationId } = (await response.json()) as { operationId: string };
              accepted.push({ operationId, account, seq: Number(operationId.split('-').at(-1)) });
            } else {
              lost.push(`${account} edit ${e}: ${response.status}`);
            }
          } catch {
            lost.push(`${account} edit ${e}: no answer`); // may have landed; not retried
          }
          break;
        }
      }
    }

    const clients = Array.from({ length: CUSTOMERS }, (_, c) => client(c));
    // Kill once a third of the stream is accepted, restart after a pause in which submits fail.
    await eventually(async () => (accepted.length >= (CUSTOMERS * (EDITS + 1)) / 3 ? true : undefined), 20_000);
    down = true;
    await stack.kill();
    await new Promise((r) => setTimeout(r, 300));
    await stack.restart();
    down = false;
    await Promise.all(clients);
    expect(accepted.length).toBeGreaterThanOrEqual(CUSTOMERS);

    // Every customer: its operations (whatever exists) all Synced exactly once, applied in order.
    const accounts = [...new Set(accepted.map((a) => a.account))];
    const appliedPer = new Map<string, number>();
    expect(accounts).toHaveLength(CUSTOMERS); // the retried creates made no second customer
    for (const account of accounts) {
      const ops = await eventually(
        async () => {
          const response = await stack.call('GET', `/operations?asyncCustomerAccount=${account}`, { token: reader });
          const { items } = (await response.json()) as { items: { operationId: string; status: string }[] };
          return items.length > 0 && items.every((i) => i.status === 'Synced') ? items : undefined;
        },
        60_000,
        `every operation of ${account} to be Synced`,
      );
      const seqs = ops.map((o) => Number(o.operationId.split('-').at(-1))).reverse();
      expect(seqs).toEqual(seqs.map((_, i) => i + 1)); // gap-free: nothing half-written
      for (const a of accepted.filter((x) => x.account === account)) {
        expect(ops.map((o) => o.operationId)).toContain(a.operationId);
      }
      const details = [];
      for (const o of ops) {
        const detail = (await (await stack.call('GET', `/operations/${o.operationId}`, { token: reader })).json()) as {
          history: { status: string }[];
          attributes: { name: string; newValue: unknown }[];
        };
        expect(detail.history.filter((h) => h.status === 'Synced')).toHaveLength(1);
        details.push(detail);
      }
      const customer = (await (await stack.call('GET', `/customers/${account}`, { token: reader })).json()) as {
        version: number;
        customer: { phone: string };
      };
      expect(customer.version).toBe(ops.length); // each operation applied once
      // Applied in order: the newest operation's phone is the customer's.
      expect(customer.customer.phone).toBe(details[0]!.attributes.find((a) => a.name === 'phone')?.newValue);
      appliedPer.set(account, ops.length);
    }
    const applied = [...appliedPer.values()].reduce((a, b) => a + b, 0);

    // The channel's feed holds each applied change exactly once: as many entries per customer as operations.
    const feed: { asyncCustomerAccount?: string }[] = [];
    let cursor = '';
    const operator = stack.token('Sync.Operator');
    await eventually(
      async () => {
        await stack.call('POST', '/jobs/sync-pending-operations/run', { token: operator });
        const path = `/channels/web/customer-updates${cursor && `?cursor=${cursor}`}`;
        const page = (await (await stack.call('GET', path, { token: web })).json()) as {
          items: { asyncCustomerAccount?: string }[];
          cursor: string;
        };
        feed.push(...page.items);
        cursor = page.cursor;
        return feed.length >= applied ? true : undefined;
      },
      10_000,
      'the feed to hold every applied change',
    );
    for (const account of accounts) {
      expect(feed.filter((f) => f.asyncCustomerAccount === account)).toHaveLength(appliedPer.get(account)!);
    }
    if (process.env.RESTART_REPORT) {
      console.log(`restart: ${accepted.length} accepted, ${lost.length} edits without an answer: ${lost.join('; ')}`);
    }
  });
});
