import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Azurite, startAzurite } from '../../local/azurite';
import { person } from '../support';
import { eventually, type Stack, startStack } from './stack';

/**
 * Storage goes away in the middle of a stream of submissions and comes back on the same data, as a Table
 * Storage outage would: while it is down a submit answers 503 problem+json (never a 500, never a hang), health
 * says 503; afterwards the channels retry what was refused under the same Idempotency-Keys, and every accepted
 * operation is applied once, with nothing else created. The stack has its own Azurite, persisted to a folder.
 */
let azurite: Azurite;
let stack: Stack;
const data = mkdtempSync(join(tmpdir(), 'outage-'));
beforeAll(async () => {
  azurite = await startAzurite({ location: data });
  stack = await startStack({ STORAGE_CONNECTION_STRING: azurite.connectionString, PENDING_RESEND_AFTER_SECONDS: '1' });
});
afterAll(async () => {
  await stack?.stop();
  await azurite?.close();
  rmSync(data, { recursive: true, force: true });
});

interface Sent {
  key: string;
  body: unknown;
  status: number;
  ms: number;
  operationId?: string;
  asyncCustomerAccount?: string;
}

describe('storage outage', () => {
  it(
    'refuses with 503 while storage is down, then applies every accepted operation once',
    { timeout: 120_000 },
    async () => {
      const web = stack.token('Channel', 'web');
      const submit = async (key: string, body: unknown): Promise<Sent> => {
        const started = Date.now();
        const response = await stack.call('POST', '/channels/web/customers', {
          token: web,
          body,
          headers: { 'Idempotency-Key': key },
        });
        const text = await response.text();
        const sent: Sent = { key, body, status: response.status, ms: Date.now() - started };
        if (response.status === 202) {
          const { operationId, asyncCustomerAccount } = JSON.parse(text) as Sent;
          Object.assign(sent, { operationId, asyncCustomerAccount });
        } else {
          expect(response.headers.get('content-type'), text).toContain('application/problem+json');
          expect(JSON.parse(text)).toMatchObject({ status: response.status, code: 'SERVICE_UNAVAILABLE' });
        }
        return sent;
      };

      // Four channels' worth of submissions, without pause, for the whole test.
      const sent: Sent[] = [];
      let streaming = true;
      const stream = Promise.all(
        Array.from({ length: 4 }, async () => {
          while (streaming) sent.push(await submit(randomUUID(), person()));
        }),
      );

      await new Promise((r) => setTimeout(r, 1500));
      await azurite.close();
      const downAt = sent.length;
      const health = await stack.call('GET', '/health');
      expect(health.status).toBe(503);
      await new Promise((r) => setTimeout(r, 4000));
      const refusedWhileDown = sent.slice(downAt).filter((s) => s.status === 503).length;
      azurite = await startAzurite({ port: azurite.port, location: data });
      await new Promise((r) => setTimeout(r, 2000));
      streaming = false;
      await stream;

      // Never a 500 or another surprise; a refusal was quick; and the outage was really seen.
      expect(new Set(sent.map((s) => s.status))).toEqual(new Set([202, 503]));
      expect(Math.max(...sent.map((s) => s.ms))).toBeLessThan(10_000);
      expect(refusedWhileDown).toBeGreaterThan(0);
      expect(sent.filter((s) => s.status === 202).length).toBeGreaterThan(downAt);
      await eventually(
        async () => ((await stack.call('GET', '/health')).status === 200 ? true : undefined),
        20_000,
        'health',
      );

      // What a channel does with a 503: send the same request again, with the same Idempotency-Key.
      for (const s of sent.filter((x) => x.status !== 202)) Object.assign(s, await submit(s.key, s.body));
      expect(sent.every((s) => s.status === 202)).toBe(true);

      // Every operation applied (the sync-pending job rings what the outage left pending), each once.
      const reader = stack.token('Sync.Reader');
      const operator = stack.token('Sync.Operator');
      await eventually(
        async () => {
          await stack.call('POST', '/jobs/sync-pending-operations/run', { token: operator });
          const statuses = await Promise.all(
            sent.map(async (s) => {
              const response = await stack.call('GET', `/operations/${s.operationId}`, { token: reader });
              return ((await response.json()) as { status: string }).status;
            }),
          );
          return statuses.every((status) => status === 'Synced') ? true : undefined;
        },
        60_000,
        'every accepted operation to be Synced',
      );
      expect(new Set(sent.map((s) => s.asyncCustomerAccount)).size).toBe(sent.length);
      // Nothing else: the channel's operations are exactly the ones it was told were accepted.
      const listed: string[] = [];
      let token: string | undefined;
      do {
        const page = (await (
          await stack.call('GET', `/operations?channel=web&top=1000${token ? `&continuationToken=${token}` : ''}`, {
            token: reader,
          })
        ).json()) as { items: { operationId: string }[]; continuationToken?: string };
        listed.push(...page.items.map((i) => i.operationId));
        token = page.continuationToken && encodeURIComponent(page.continuationToken);
      } while (token);
      expect(listed.sort()).toEqual(sent.map((s) => s.operationId!).sort());
      console.log(
        `storage outage: ${sent.length} creates, ${refusedWhileDown} refused with 503 while storage was down, ` +
          `slowest answer ${Math.max(...sent.map((s) => s.ms))} ms; all applied once`,
      );
    },
  );
});
