import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { person } from '../support';
import { eventually, type Stack, startStack } from './stack';

/**
 * Mixed reads and writes over HTTP at concurrency 64 against the local stack: every request must get its
 * expected answer (zero errors, zero 5xx, zero empty bodies), and every accepted operation must then reach
 * Synced. Prints throughput and latency percentiles.
 *
 * CI sends LOAD_REQUESTS (default 3,000); the full run is
 * `LOAD_REQUESTS=20000 npx vitest run test/e2e/load.test.ts`.
 */
const REQUESTS = Number(process.env.LOAD_REQUESTS ?? 3000);
const CONCURRENCY = 64;
const CHANNELS = ['web', 'pos-1', 'pos-2', 'app'];

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.stop());

interface Outcome {
  kind: string;
  status: number;
  ms: number;
  error?: string;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

describe(`load: ${REQUESTS} mixed requests at concurrency ${CONCURRENCY}`, () => {
  it('answers every request as expected and applies every accepted operation', { timeout: 30 * 60_000 }, async () => {
    const tokens = Object.fromEntries(CHANNELS.map((c) => [c, stack.token('Channel', c)]));
    const reader = stack.token('Sync.Reader');
    const created: { channel: string; account: string; operationId: string }[] = [];
    const accepted: string[] = [];
    const outcomes: Outcome[] = [];

    /** One request of the mix; returns the expected status for its kind. */
    async function one(i: number): Promise<void> {
      const roll = i % 20;
      const channel = CHANNELS[i % CHANNELS.length]!;
      const target = created.length ? created[(i * 7919) % created.length] : undefined;
      let kind: string;
      let request: { method: string; path: string; token: string; body?: unknown };
      let expected: number;
      if (roll < 8 || !target) {
        kind = 'create';
        request = { method: 'POST', path: `/channels/${channel}/customers`, token: tokens[channel]!, body: person() };
        expected = 202;
      } else if (roll < 12) {
        kind = 'edit';
        request = {
          method: 'PATCH',
          path: `/channels/${target.channel}/customers/${target.account}`,
          token: tokens[target.channel]!,
          body: { phone: `+45${String(i).padStart(8, '0')}` },
        };
        expected = 202;
      } else if (roll < 15) {
        kind = 'get operation';
        request = { method: 'GET', path: `/operations/${target.operationId}`, token: reader };
        expected = 200;
      } else if (roll < 17) {
        kind = 'list by channel';
        request = { method: 'GET', path: `/operations?channel=${channel}&top=50`, token: reader };
        expected = 200;
      } else if (roll < 18) {
        kind = 'list by account';
        request = { method: 'GET', path: `/operations?asyncCustomerAccount=${target.account}`, token: reader };
        expected = 200;
      } else if (roll < 19) {
        kind = 'feed';
        request = { method: 'GET', path: `/channels/${channel}/customer-updates`, token: tokens[channel]! };
        expected = 200;
      } else {
        kind = 'failures';
        request = { method: 'GET', path: '/failures', token: reader };
        expected = 200;
      }
      const started = performance.now();
      try {
        const response = await stack.call(request.method, request.path, { token: request.token, body: request.body });
        const text = await response.text();
        const ms = performance.now() - started;
        let body: Record<string, string> | undefined;
        try {
          body = JSON.parse(text) as Record<string, string>;
        } catch {
          // an empty or non-JSON body is an error below
        }
        const ok = response.status === expected && body !== undefined;
        outcomes.push({ kind, status: response.status, ms, ...(ok ? {} : { error: text.slice(0, 300) || '(empty)' }) });
        if (ok && kind === 'create') {
          created.push({ channel, account: body!.asyncCustomerAccount!, operationId: body!.operationId! });
        }
        if (ok && (kind === 'create' || kind === 'edit')) accepted.push(body!.operationId!);
      } catch (error) {
        outcomes.push({ kind, status: 0, ms: performance.now() - started, error: String(error) });
      }
    }

    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < REQUESTS) await one(next++);
      }),
    );
    const seconds = (performance.now() - started) / 1000;

    const latencies = outcomes.map((o) => o.ms).sort((a, b) => a - b);
    const errors = outcomes.filter((o) => o.error);
    const byKind = Object.entries(
      outcomes.reduce<Record<string, number>>((acc, o) => ({ ...acc, [o.kind]: (acc[o.kind] ?? 0) + 1 }), {}),
    )
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    console.log(
      `load: ${outcomes.length} requests in ${seconds.toFixed(1)} s = ${(outcomes.length / seconds).toFixed(0)}/s; ` +
        `p50 ${percentile(latencies, 0.5).toFixed(0)} ms, p99 ${percentile(latencies, 0.99).toFixed(0)} ms, ` +
        `max ${latencies.at(-1)!.toFixed(0)} ms; ${errors.length} errors; ${byKind}`,
    );
    expect(outcomes).toHaveLength(REQUESTS);
    expect(errors.slice(0, 5)).toEqual([]);

    // Every accepted operation is applied: drained through the queue, none lost.
    const drainStarted = performance.now();
    for (const id of accepted) {
      await eventually(
        async () => {
          const response = await stack.call('GET', `/operations/${id}`, { token: reader });
          return ((await response.json()) as { status: string }).status === 'Synced' ? true : undefined;
        },
        120_000,
        `${id} to be Synced`,
      );
    }
    console.log(
      `load: all ${accepted.length} accepted operations Synced ` +
        `${((performance.now() - drainStarted) / 1000).toFixed(1)} s after the last request`,
    );
  });
});
