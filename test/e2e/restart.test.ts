import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { person } from '../support';
import { eventually, type Stack, startStack } from './stack';

/**
 * A crash of the host in the middle of a stream of submissions: SIGKILL, no shutdown hook, requests and
 * queue messages in flight. Channels send every create and edit with an Idempotency-Key and retry it until
 * they get an answer, as a real channel would. After the restart every submission exists exactly once and
 * is applied exactly once, in order.
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
  it(
    'SIGKILL mid-stream: every accepted operation completes once, in order; no customer twice',
    { timeout: 120_000 },
    async () => {
      const web = stack.token('Channel', 'web');
      const reader = stack.token('Sync.Reader');
      const accepted: { operationId: string; account: string }[] = [];
      let retries = 0;

      /** Sends until answered (connection refused or reset while the host is down: retry with the same key). */
      async function submit(method: string, path: string, body: unknown, key: string): Promise<Record<string, string>> {
        for (;;) {
          let response: Response | undefined;
          try {
            response = await stack.call(method, path, { token: web, body, headers: { 'Idempotency-Key': key } });
          } catch {
            // no answer: the host is down
          }
          if (response?.status === 202) return (await response.json()) as Record<string, string>;
          // Only "no answer" or "try again" may be retried; anything else is a failure of the test.
          if (response) expect([500, 503], await response.text()).toContain(response.status);
          retries++;
          await new Promise((r) => setTimeout(r, 50));
        }
      }

      /** One channel client: a create, then its edits in order. */
      async function client(c: number) {
        const run = `${c}-${Date.now()}`;
        const created = await submit('POST', '/channels/web/customers', person({ phone: 'p0' }), `create-${run}`);
        const account = created.asyncCustomerAccount!;
        accepted.push({ operationId: created.operationId!, account });
        for (let e = 1; e <= EDITS; e++) {
          const edit = await submit(
            'PATCH',
            `/channels/web/customers/${account}`,
            { phone: `p${e}` },
            `edit-${run}-${e}`,
          );
          accepted.push({ operationId: edit.operationId!, account });
        }
      }

      const clients = Array.from({ length: CUSTOMERS }, (_, c) => client(c));
      // Kill once a third of the stream is accepted, restart after a pause in which submits fail.
      await eventually(async () => (accepted.length >= (CUSTOMERS * (EDITS + 1)) / 3 ? true : undefined), 20_000);
      await stack.kill();
      await new Promise((r) => setTimeout(r, 300));
      await stack.restart();
      await Promise.all(clients);
      expect(accepted).toHaveLength(CUSTOMERS * (EDITS + 1));
      expect(new Set(accepted.map((a) => a.operationId)).size).toBe(accepted.length);

      // Every customer: its operations all Synced exactly once, applied in order.
      const accounts = [...new Set(accepted.map((a) => a.account))];
      const appliedPer = new Map<string, number>();
      expect(accounts).toHaveLength(CUSTOMERS);
      // The retried creates made no second customer: the stack's own tables hold exactly these creates.
      const creates = (await (
        await stack.call('GET', '/operations?type=Create&top=1000', { token: reader })
      ).json()) as { items: { asyncCustomerAccount: string }[] };
      expect(creates.items.map((i) => i.asyncCustomerAccount).sort()).toEqual([...accounts].sort());
      for (const account of accounts) {
        const ops = await eventually(
          async () => {
            const response = await stack.call('GET', `/operations?asyncCustomerAccount=${account}`, { token: reader });
            const { items } = (await response.json()) as { items: { operationId: string; status: string }[] };
            const expected = accepted.filter((x) => x.account === account).length;
            return items.length === expected && items.every((i) => i.status === 'Synced') ? items : undefined;
          },
          60_000,
          `every operation of ${account} to be Synced`,
        );
        // Exactly the accepted operations: none lost, none twice (the retries found their first answer).
        expect(ops.map((o) => o.operationId).sort()).toEqual(
          accepted
            .filter((a) => a.account === account)
            .map((a) => a.operationId)
            .sort(),
        );
        const details = [];
        for (const o of ops) {
          const detail = (await (
            await stack.call('GET', `/operations/${o.operationId}`, { token: reader })
          ).json()) as {
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
        expect(customer.customer.phone).toBe(`p${EDITS}`); // applied in order: the last edit wins
        expect(details[0]!.attributes).toContainEqual(
          expect.objectContaining({ name: 'phone', newValue: `p${EDITS}` }),
        );
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
      if (process.env.RESTART_REPORT) console.log(`restart: ${accepted.length} accepted, ${retries} retries`);
    },
  );
});
