import http from 'node:http';
import path from 'node:path';

import { ServiceBusClient } from '@azure/service-bus';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { type FunctionsHost, listTimerFunctions, startFunctionsHost } from '../../local/host/index';
import { closeWorstCaseMs, deadlines } from '../../local/host/shutdown';
import { uniqueName } from '../support';

const appRoot = path.join(__dirname, '../fixtures/host-app');

interface FixtureState {
  events: string[];
  ticks: { timer: { isPastDue: boolean; scheduleStatus: { last: string; next: string } }; functionName: string }[];
  slowTicks: { runs: number; running: number; maxRunning: number };
  messages: { message: unknown; messageId: string; deliveryCount: number; metadata: Record<string, unknown> }[];
}

const fixture = (): FixtureState => (globalThis as unknown as { hostFixture: FixtureState }).hostFixture;

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for condition');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('local Functions host: HTTP, timers, hooks and settings', () => {
  let host: FunctionsHost;
  const lines: string[] = [];

  beforeAll(async () => {
    host = await startFunctionsHost({
      appRoot,
      port: 0,
      log: (line) => lines.push(line),
      settings: {
        TICK_SCHEDULE: '*/1 * * * * *',
        SETTINGS_ROUTE: 'configured/route',
        FIXTURE_GREETING: 'hi from settings',
        'AzureWebJobs.orders.Disabled': 'true',
      },
    });
  });

  afterAll(async () => {
    await host?.close();
  });

  it('reports its URL and every registered function', () => {
    expect(host.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(host.functions).toEqual(expect.arrayContaining(['hello', 'items-get', 'tick', 'orders', 'hooked']));
    expect(lines.some((l) => l.includes(`items-get: [GET] ${host.url}/api/items/{id:int}`))).toBe(true);
  });

  it('serves a GET on the default route (the function name) with query parameters', async () => {
    const res = await fetch(`${host.url}/api/hello?name=Ada`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe('hello Ada');
  });

  it('matches literals case-insensitively and tolerates a trailing slash', async () => {
    expect(await (await fetch(`${host.url}/API/Hello/`)).text()).toBe('hello world');
  });

  it('passes route parameters, repeated query values and headers', async () => {
    const res = await fetch(`${host.url}/api/items/42?tag=a&tag=b`, { headers: { 'x-custom': 'yes' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      id: '42',
      tags: 'a,b',
      header: 'yes',
      url: `${host.url}/api/items/42?tag=a&tag=b`,
    });
  });

  it('prefers a literal route over a parameter and enforces constraints', async () => {
    expect(await (await fetch(`${host.url}/api/items/special`)).text()).toBe('special');
    expect((await fetch(`${host.url}/api/items/not-a-number`)).status).toBe(404);
  });

  it('supports guid constraints and catch-all parameters', async () => {
    const id = '3f2504e0-4f89-11d3-9a0c-0305e82c3301';
    const res = await fetch(`${host.url}/api/things/${id}/a/b%20c`);
    expect(await res.json()).toEqual({ id, rest: 'a/b c' });
    expect((await fetch(`${host.url}/api/things/nope/a`)).status).toBe(404);
  });

  it('reads a JSON body and maps status, headers and cookies', async () => {
    const res = await fetch(`${host.url}/api/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'widget' }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe('/api/items/1');
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.getSetCookie()).toEqual(['session=a%20b; Path=/; HttpOnly; SameSite=Lax']);
    expect(await res.json()).toEqual({ created: { name: 'widget' } });
  });

  it('reads a text body, with and without the optional parameter', async () => {
    const withKind = await fetch(`${host.url}/api/echo/note`, {
      method: 'PUT',
      headers: { 'content-type': 'text/markdown' },
      body: '# hello',
    });
    expect(await withKind.text()).toBe('# hello');
    expect(withKind.headers.get('x-kind')).toBe('note');
    expect(withKind.headers.get('x-method')).toBe('PUT');
    expect(withKind.headers.get('content-type')).toBe('text/markdown');

    const withoutKind = await fetch(`${host.url}/api/echo`, { method: 'POST', body: 'plain' });
    expect(await withoutKind.text()).toBe('plain');
    expect(withoutKind.headers.get('x-kind')).toBe('none');
  });

  it('passes binary bodies through untouched in both directions', async () => {
    const res = await fetch(`${host.url}/api/binary`, { method: 'POST', body: new Uint8Array([0, 1, 2, 255]) });
    expect([...new Uint8Array(await res.arrayBuffer())]).toEqual([255, 2, 1, 0]);
  });

  it('answers 404 for a method the function does not accept, an unknown route or a missing prefix', async () => {
    expect((await fetch(`${host.url}/api/items/1`, { method: 'DELETE' })).status).toBe(404);
    expect((await fetch(`${host.url}/api/echo`, { method: 'GET' })).status).toBe(404);
    expect((await fetch(`${host.url}/api/nowhere`)).status).toBe(404);
    expect((await fetch(`${host.url}/hello`)).status).toBe(404);
  });

  it('answers 500 without details when the function throws, and logs the error', async () => {
    const res = await fetch(`${host.url}/api/fails`);
    expect(res.status).toBe(500);
    const body = await res.text();
    expect(body).not.toContain('boom');
    expect(body).not.toContain('at ');
    expect(lines.some((l) => l.includes('[fails]') && l.includes('boom: secret detail'))).toBe(true);
  });

  it('answers an empty 200 when the function returns nothing, as the host does', async () => {
    const res = await fetch(`${host.url}/api/silent`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  it('resolves %SETTING% in binding properties and exposes settings as environment variables', async () => {
    const res = await fetch(`${host.url}/api/configured/route`);
    expect(await res.json()).toEqual({ fromEnv: 'hi from settings' });
    expect(listTimerFunctions(host).find((t) => t.name === 'tick')?.schedule).toBe('*/1 * * * * *');
  });

  it('logs warnings from functions but not information lines by default', async () => {
    expect((await fetch(`${host.url}/api/logs`)).status).toBe(204);
    expect(lines.some((l) => l.includes('[logs] a warning line'))).toBe(true);
    expect(lines.some((l) => l.includes('an information line'))).toBe(false);
  });

  it('runs appStart, preInvocation and postInvocation hooks', async () => {
    expect(fixture().events).toContain('appStart');
    const res = await fetch(`${host.url}/api/hooked`);
    expect(await res.text()).toBe('hooked');
    expect(res.headers.get('x-handler')).toBe('yes');
    expect(res.headers.get('x-wrapped')).toBe('yes');
    expect(res.headers.get('x-post')).toBe('ran');
  });

  it('fires a timer every second with the timer object the library expects', async () => {
    await waitFor(() => fixture().ticks.length >= 2, 5000);
    const [first] = fixture().ticks;
    expect(first?.functionName).toBe('tick');
    expect(first?.timer.isPastDue).toBe(false);
    expect(Date.parse(first?.timer.scheduleStatus.next ?? '')).toBeGreaterThan(
      Date.parse(first?.timer.scheduleStatus.last ?? ''),
    );
  });

  it('runs runOnStartup timers once at startup', () => {
    expect(fixture().events.filter((e) => e === 'yearly ran on startup')).toHaveLength(1);
  });

  it('never overlaps a timer with itself', async () => {
    await waitFor(() => fixture().slowTicks.runs >= 2, 6000);
    expect(fixture().slowTicks.maxRunning).toBe(1);
  });

  it('keeps connections alive and handles many concurrent requests', async () => {
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) => fetch(`${host.url}/api/items/${i}`).then((r) => r.json())),
    );
    expect(responses.map((r) => (r as { id: string }).id)).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
  });

  it('finishes in-flight requests on close, then runs appTerminate hooks', async () => {
    const slow = fetch(`${host.url}/api/slow`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await host.close();
    const res = await slow;
    expect(await res.text()).toBe('done');
    expect(fixture().events).toContain('appTerminate (started hook data kept: true)');
    await expect(fetch(`${host.url}/api/hello`)).rejects.toThrow();
  });
});

describe('local Functions host: HTTP streaming apps', () => {
  let host: FunctionsHost;
  const lines: string[] = [];

  beforeAll(async () => {
    host = await startFunctionsHost({ appRoot: path.join(appRoot, 'streaming'), port: 0, log: (l) => lines.push(l) });
  });

  afterAll(async () => {
    await host?.close();
  });

  it('serves routes without a prefix when routePrefix is empty', async () => {
    expect((await fetch(`${host.url}/api/stream`)).status).toBe(404);
    expect((await fetch(`${host.url}/nothing`)).status).toBe(200);
  });

  it('pipes a streamed response body without buffering it', async () => {
    const started = Date.now();
    const res = await fetch(`${host.url}/stream`);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    const firstAt = Date.now() - started;
    expect(new TextDecoder().decode(first.value)).toBe('first\n');
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    expect(rest).toBe('second\n');
    expect(firstAt).toBeLessThan(Date.now() - started - 300);
  });

  it('streams a request body to the function', async () => {
    const res = await fetch(`${host.url}/upload/data?q=1`, { method: 'POST', body: Buffer.alloc(3_000_000, 1) });
    expect(await res.json()).toEqual({ name: 'data', bytes: 3_000_000, query: '1' });
  });

  it('answers 500 when a streaming function throws', async () => {
    expect((await fetch(`${host.url}/explodes`)).status).toBe(500);
    expect(lines.some((l) => l.includes('kaboom'))).toBe(true);
  });
});

describe('local Functions host: Service Bus queue trigger', () => {
  const queue = uniqueName('host-');
  const connectionString = inject('serviceBusConnectionString');
  const client = new ServiceBusClient(connectionString);
  const lines: string[] = [];
  let host: FunctionsHost;

  beforeAll(async () => {
    host = await startFunctionsHost({
      appRoot,
      port: 0,
      log: (line) => lines.push(line),
      settings: {
        SB_CONNECTION: connectionString,
        ORDERS_QUEUE: queue,
        TICK_SCHEDULE: '0 0 0 1 1 *',
        SETTINGS_ROUTE: 'configured/route',
        'AzureWebJobs.slow-tick.Disabled': 'true',
      },
    });
  });

  afterAll(async () => {
    await host?.close();
    await client.close();
  });

  const deliveriesOf = (messageId: string) => fixture().messages.filter((m) => m.messageId === messageId);

  it('passes the body and trigger metadata, and completes the message on success', async () => {
    const sender = client.createSender(queue);
    await sender.sendMessages([
      { body: { orderId: 'o-1' }, messageId: 'm-1', correlationId: 'c-1', applicationProperties: { Source: 'test' } },
      { body: 'just text', messageId: 'm-2' },
    ]);
    await sender.close();
    await waitFor(() => deliveriesOf('m-1').length > 0 && deliveriesOf('m-2').length > 0);

    const [first] = deliveriesOf('m-1');
    expect(first?.message).toEqual({ orderId: 'o-1' });
    expect(first?.deliveryCount).toBe(1);
    expect(first?.metadata).toMatchObject({
      correlationId: 'c-1',
      applicationProperties: { source: 'test' },
      enqueuedTimeUtc: expect.any(String),
    });
    expect(deliveriesOf('m-2')[0]?.message).toBe('just text');

    // Completed, so never redelivered.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(deliveriesOf('m-1')).toHaveLength(1);
  });

  it('abandons the message when the function throws, so it comes back with deliveryCount 2', async () => {
    const sender = client.createSender(queue);
    await sender.sendMessages({ body: { failOnce: true }, messageId: 'm-retry' });
    await sender.close();
    await waitFor(() => deliveriesOf('m-retry').length >= 2);
    expect(deliveriesOf('m-retry').map((m) => m.deliveryCount)).toEqual([1, 2]);
    expect(lines.some((l) => l.includes('[orders]') && l.includes('transient failure'))).toBe(true);
  });

  it('leaves nothing on the queue once the host has settled every message, and logged no receiver trouble', async () => {
    await host.close();
    const receiver = client.createReceiver(queue);
    const left = await receiver.receiveMessages(10, { maxWaitTimeInMs: 1000 });
    await receiver.close();
    expect(left.map((m) => m.messageId)).toEqual([]);
    expect(lines.filter((l) => / (warn|error) /.test(l) && !l.includes('transient failure'))).toEqual([]);
  });
});

describe('local Functions host: a close that cannot wait for everything', () => {
  it('gives up on an invocation that outlives the drain deadline, and names it', { timeout: 30_000 }, async () => {
    const lines: string[] = [];
    const host = await startFunctionsHost({
      appRoot,
      port: 0,
      log: (line) => lines.push(line),
      settings: {
        TICK_SCHEDULE: '0 0 0 1 1 *',
        SETTINGS_ROUTE: 'configured/route',
        'AzureWebJobs.orders.Disabled': 'true',
        'AzureWebJobs.slow-tick.Disabled': 'true',
      },
    });
    // A body that never ends keeps the echo invocation waiting for it.
    const endless = http.request(`${host.url}/api/echo`, {
      method: 'POST',
      headers: { 'transfer-encoding': 'chunked' },
    });
    endless.on('error', () => undefined);
    await new Promise((resolve) => endless.write('never finished', resolve));
    // The host shares this event loop: once the bytes are written, a few turns of it see the request in.
    await new Promise((resolve) => setTimeout(resolve, 100));

    const started = Date.now();
    await host.close();
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(deadlines.drain - 50);
    expect(took).toBeLessThan(closeWorstCaseMs);
    expect(lines).toContainEqual(
      expect.stringContaining(
        ` warn [host] shutdown: in-flight invocations did not finish within ${deadlines.drain / 1000} s (still running: echo); going on`,
      ),
    );
    expect(host.closingSteps).toEqual([]);
  });
});
