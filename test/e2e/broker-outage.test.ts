import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DevBroker, startDevBroker } from '../../local/broker';
import { person } from '../support';
import { eventually, type Stack, startStack } from './stack';

/**
 * The broker goes away (its queue and every message in it with it) while channels keep submitting, and
 * comes back on the same address: submits are still accepted, health says the broker is down, and once it is
 * back the sync-pending job rings every customer left pending, so every operation is applied.
 */
let broker: DevBroker;
let stack: Stack;
beforeAll(async () => {
  broker = await startDevBroker({ port: 0 });
  stack = await startStack({ SERVICEBUS_CONNECTION: broker.connectionString, PENDING_RESEND_AFTER_SECONDS: '1' });
});
afterAll(async () => {
  await stack?.stop();
  await broker?.close();
});

describe('broker outage', () => {
  it('submits are accepted while the broker is down, and applied once it is back', { timeout: 60_000 }, async () => {
    const web = stack.token('Channel', 'web');
    const reader = stack.token('Sync.Reader');
    const before = (await (
      await stack.call('POST', '/channels/web/customers', { token: web, body: person() })
    ).json()) as { operationId: string };

    await broker.close();
    const started = Date.now();
    const during = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const response = await stack.call('POST', '/channels/web/customers', { token: web, body: person() });
        expect(response.status).toBe(202);
        return ((await response.json()) as { operationId: string }).operationId;
      }),
    );
    // The ring gives up after its timeout instead of holding the request for the SDK's minutes of retries.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect((await stack.call('GET', '/health')).status).toBe(503);

    broker = await startDevBroker({ port: broker.port });
    const operator = stack.token('Sync.Operator');
    for (const id of [before.operationId, ...during]) {
      await eventually(
        async () => {
          await new Promise((r) => setTimeout(r, 250));
          await stack.call('POST', '/jobs/sync-pending-operations/run', { token: operator });
          const op = (await (await stack.call('GET', `/operations/${id}`, { token: reader })).json()) as {
            status: string;
          };
          return op.status === 'Synced' ? true : undefined;
        },
        40_000,
        `${id} to be Synced after the broker is back`,
      );
    }
    expect((await stack.call('GET', '/health')).status).toBe(200);
  });
});
