import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { runAlerts as evaluate } from '../../shared/alerts/job';
import { alertsPage, listAlertRules, removeAlertRule, setAlertRule } from '../../shared/alerts/rules';
import type { AlertMetric, WebhookPayload } from '../../shared/domain/alerts';
import type { AlertStore } from '../../shared/domain/ports';
import { runJob } from '../../shared/jobs';
import type { SyncContext } from '../../shared/operations/context';
import { processCustomer } from '../../shared/operations/process';
import { submitCreate, submitEdit } from '../../shared/operations/submit';
import { person, testContext } from '../support';

const MINUTE = 60_000;

/** The context as seen `minutes` from now: how a test lets the window move on, or a retry come due. */
const at = (ctx: SyncContext, minutes: number): SyncContext => ({
  ...ctx,
  clock: () => new Date(Date.now() + minutes * MINUTE),
});

const runAlerts = async (ctx: SyncContext) => (await runJob(ctx, 'alerts')).counts;
const alerts = async (ctx: SyncContext) => (await alertsPage(ctx, 100)).items;

const deadLetter = (ctx: SyncContext, receivedAt = new Date()) =>
  ctx.store.deadLetters.add({
    messageId: `m-${Math.random().toString(36).slice(2)}`,
    reason: 'not a doorbell',
    body: '{}',
    receivedAt: receivedAt.toISOString(),
  });

async function rule(ctx: SyncContext, name: string, metric: AlertMetric, threshold: number, extra = {}) {
  return setAlertRule(ctx, { name, metric, threshold, windowMinutes: 10, ...extra });
}

/** A webhook receiver on 127.0.0.1 that records what it gets and answers as the test says. */
interface Receiver {
  url: string;
  port: number;
  received: WebhookPayload[];
  answer: (request: IncomingMessage, response: ServerResponse) => void;
  close(): Promise<void>;
}
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((s) => {
      s.closeAllConnections();
      return new Promise((resolve) => s.close(resolve));
    }),
  );
});

async function receiver(port = 0): Promise<Receiver> {
  const server = createServer();
  servers.push(server);
  const r: Receiver = {
    url: '',
    port: 0,
    received: [],
    answer: (_request, response) => response.writeHead(204).end(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      r.received.push(JSON.parse(body) as WebhookPayload);
      r.answer(request, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  r.port = (server.address() as AddressInfo).port;
  r.url = `http://127.0.0.1:${r.port}/hook`;
  return r;
}

describe('alert rules fire and resolve exactly once', () => {
  it('fires when the threshold is reached, once across runs; resolves once below it; fires again after that', async () => {
    const { ctx } = await testContext();
    await rule(ctx, 'dead', 'deadLetters', 2);
    await deadLetter(ctx);
    expect(await runAlerts(ctx)).toMatchObject({ evaluated: 1, fired: 0, resolved: 0 });
    await deadLetter(ctx);
    expect(await runAlerts(ctx)).toMatchObject({ evaluated: 1, fired: 1, resolved: 0 });
    expect(await runAlerts(ctx)).toMatchObject({ fired: 0, resolved: 0 });
    expect(await runAlerts(ctx)).toMatchObject({ fired: 0, resolved: 0 });
    const [firing] = await alerts(ctx);
    expect(await alerts(ctx)).toHaveLength(1);
    expect(firing).toMatchObject({ rule: 'dead', metric: 'deadLetters', value: 2, threshold: 2 });
    expect(firing!.resolvedAt).toBeUndefined();
    expect((await listAlertRules(ctx)).items).toMatchObject([{ name: 'dead', firing: true }]);

    // Eleven minutes on, both letters are out of the 10-minute window.
    const later = at(ctx, 11);
    expect(await runAlerts(later)).toMatchObject({ fired: 0, resolved: 1 });
    expect(await runAlerts(later)).toMatchObject({ fired: 0, resolved: 0 });
    const [resolved] = await alerts(later);
    expect(resolved).toMatchObject({ rule: 'dead', value: 2, resolvedValue: 0, resolvedReason: 'BelowThreshold' });
    expect(resolved!.resolvedAt! > resolved!.firedAt).toBe(true);

    await deadLetter(later, new Date(Date.now() + 11 * MINUTE));
    await deadLetter(later, new Date(Date.now() + 11 * MINUTE));
    expect(await runAlerts(later)).toMatchObject({ fired: 1, resolved: 0 });
    const both = await alerts(later);
    expect(both.map((a) => [a.rule, a.resolvedAt === undefined])).toEqual([
      ['dead', true],
      ['dead', false],
    ]);
  });

  it('counts failed operations that failed within the window and are still Failed', async () => {
    const { ctx } = await testContext();
    const failNow = async (c: SyncContext) => {
      const accepted = await submitCreate(c, { channel: 'web', customer: person({ customerGroup: 'Nope' }) });
      await processCustomer(c, accepted.asyncCustomerAccount!);
    };
    await failNow(at(ctx, -30)); // failed before the window
    await failNow(ctx);
    await failNow(ctx);
    const ok = await submitCreate(ctx, { channel: 'web', customer: person() });
    await processCustomer(ctx, ok.asyncCustomerAccount!);
    await rule(ctx, 'failed-3', 'failedOperations', 3);
    await rule(ctx, 'failed-2', 'failedOperations', 2);
    expect(await runAlerts(ctx)).toMatchObject({ evaluated: 2, fired: 1 });
    expect(await alerts(ctx)).toMatchObject([{ rule: 'failed-2', value: 2 }]);
  });

  it('counts operations still Pending after the window, including edits waiting behind a failed create', async () => {
    const { ctx } = await testContext();
    const old = at(ctx, -20);
    await submitCreate(old, { channel: 'web', customer: person() }); // never processed: overdue
    await submitCreate(ctx, { channel: 'web', customer: person() }); // pending, but recent
    const failed = await submitCreate(old, { channel: 'web', customer: person({ customerGroup: 'Nope' }) });
    await submitEdit(old, { channel: 'web', account: failed.asyncCustomerAccount!, patch: { phone: '+45 1' } });
    await submitEdit(ctx, { channel: 'web', account: failed.asyncCustomerAccount!, patch: { phone: '+45 2' } });
    // The create fails; the edits wait behind it, Pending, and the customer leaves the pending index.
    await processCustomer(ctx, failed.asyncCustomerAccount!);
    expect(await ctx.store.pending.get(failed.asyncCustomerAccount!)).toBeUndefined();
    const synced = await submitCreate(old, { channel: 'web', customer: person() });
    await processCustomer(ctx, synced.asyncCustomerAccount!);

    await rule(ctx, 'overdue-2', 'pendingOverdue', 2);
    await rule(ctx, 'overdue-3', 'pendingOverdue', 3);
    expect(await runAlerts(ctx)).toMatchObject({ evaluated: 2, fired: 1 });
    const [alert] = await alerts(ctx);
    expect(alert).toMatchObject({ rule: 'overdue-2', value: 2 });
  });

  it('counts open sync errors of every kind, and dead letters within the window only', async () => {
    const { ctx } = await testContext();
    const error = (kind: 'ModifiedInBoth' | 'DeletedInCrm' | 'Failed', key: string) =>
      ctx.store.syncErrors.put({
        kind,
        message: 'm',
        failedOn: new Date().toISOString(),
        hqExists: true,
        crmExists: kind !== 'DeletedInCrm',
        customerKey: key,
        customerAccount: key,
        crmTable: 'contacts',
        crmId: '00000000-0000-4000-8000-000000000001',
        skipped: false,
      });
    await Promise.all([error('ModifiedInBoth', 'A'), error('DeletedInCrm', 'B'), error('Failed', 'C')]);
    await deadLetter(ctx, new Date(Date.now() - 11 * MINUTE));
    await deadLetter(ctx, new Date(Date.now() - 9 * MINUTE));
    await rule(ctx, 'errors', 'syncErrors', 3);
    await rule(ctx, 'too-many-errors', 'syncErrors', 4);
    await rule(ctx, 'letters', 'deadLetters', 1);
    await rule(ctx, 'letters-2', 'deadLetters', 2);
    expect(await runAlerts(ctx)).toMatchObject({ evaluated: 4, fired: 2 });
    const fired = Object.fromEntries((await alerts(ctx)).map((a) => [a.rule, a.value]));
    expect(fired).toEqual({ errors: 3, letters: 1 });
  });

  it('fires once when the run crashes between deciding and recording, and finishes the firing next run', async () => {
    const { ctx } = await testContext();
    await rule(ctx, 'dead', 'deadLetters', 1);
    await deadLetter(ctx);
    const crashing: AlertStore = new Proxy(ctx.store.alerts, {
      get: (target, name: keyof AlertStore) =>
        name === 'recordFiring'
          ? () => Promise.reject(new Error('process killed'))
          : (target[name] as (...args: unknown[]) => unknown).bind(target),
    });
    await expect(runJob({ ...ctx, store: { ...ctx.store, alerts: crashing } }, 'alerts')).rejects.toThrow(
      'process killed',
    );
    expect(await alerts(ctx)).toEqual([]);
    expect(await runAlerts(ctx)).toMatchObject({ fired: 0 }); // not decided again: finished
    expect(await runAlerts(ctx)).toMatchObject({ fired: 0 });
    expect(await alerts(ctx)).toMatchObject([{ rule: 'dead', value: 1 }]);
  });

  it('two runs at once fire a rule once (the rule’s ETag decides, whatever the lease)', async () => {
    const { ctx } = await testContext();
    await rule(ctx, 'dead', 'deadLetters', 1);
    await deadLetter(ctx);
    const counts = await Promise.all([evaluate(ctx), evaluate(ctx), evaluate(ctx)]);
    expect(counts.reduce((n, c) => n + c.counts.fired, 0)).toBe(1);
    expect(await alerts(ctx)).toHaveLength(1);
  });

  it('a second run while one holds the lease is refused with JOB_RUNNING', async () => {
    const { ctx } = await testContext();
    const slow = await receiver();
    slow.answer = (_q, response) => setTimeout(() => response.writeHead(204).end(), 500);
    await rule(ctx, 'dead', 'deadLetters', 1, { webhookUrl: slow.url });
    await deadLetter(ctx);
    const first = runJob(ctx, 'alerts');
    await new Promise((r) => setTimeout(r, 100));
    await expect(runJob(ctx, 'alerts')).rejects.toMatchObject({ code: 'JOB_RUNNING' });
    expect((await first).counts).toMatchObject({ fired: 1 });
  });

  it('deleting a firing rule resolves its alert (and tells the webhook); deleting an unknown rule is NOT_FOUND', async () => {
    const { ctx } = await testContext();
    const hook = await receiver();
    await rule(ctx, 'dead', 'deadLetters', 1, { webhookUrl: hook.url });
    await deadLetter(ctx);
    await runAlerts(ctx);
    await removeAlertRule(ctx, 'dead');
    expect((await listAlertRules(ctx)).items).toEqual([]);
    expect(await alerts(ctx)).toMatchObject([{ rule: 'dead', resolvedReason: 'RuleDeleted' }]);
    expect(await runAlerts(ctx)).toMatchObject({ evaluated: 0, delivered: 1 });
    expect(hook.received.map((p) => p.event)).toEqual(['fired', 'resolved']);
    expect(hook.received[1]).toMatchObject({ rule: 'dead', resolvedAt: expect.any(String) });
    await expect(removeAlertRule(ctx, 'dead')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('webhook delivery', () => {
  it('POSTs each firing and resolution with the alert’s fields and a link to the console’s view', async () => {
    const { ctx } = await testContext();
    const hook = await receiver();
    await rule(ctx, 'overdue', 'pendingOverdue', 1, { webhookUrl: hook.url });
    await submitCreate(at(ctx, -20), { channel: 'web', customer: person() });
    expect(await runAlerts(ctx)).toMatchObject({ fired: 1, delivered: 1 });
    const [fired] = hook.received;
    expect(fired).toMatchObject({
      event: 'fired',
      rule: 'overdue',
      metric: 'pendingOverdue',
      value: 1,
      threshold: 1,
      windowMinutes: 10,
      firedAt: expect.any(String),
    });
    expect(fired!.id).toBe(`overdue@${fired!.firedAt}`);
    const link = new URL(fired!.link);
    expect(`${link.origin}${link.pathname}`).toBe('http://localhost:7071/api/console/');
    const [route, query] = link.hash.slice(1).split('?');
    expect(route).toBe('/operations');
    const params = new URLSearchParams(query);
    expect(params.get('status')).toBe('Pending');
    expect(Date.parse(fired!.firedAt) - Date.parse(params.get('to')!)).toBe(10 * MINUTE);
    expect(await alerts(ctx)).toMatchObject([{ delivery: { status: 'Delivered', attempts: 1 } }]);

    // Processed: nothing overdue any more.
    for await (const entry of ctx.store.pending.list()) await processCustomer(ctx, entry.customerKey);
    expect(await runAlerts(ctx)).toMatchObject({ resolved: 1, delivered: 1 });
    expect(hook.received[1]).toMatchObject({
      event: 'resolved',
      id: fired!.id,
      value: 0,
      resolvedAt: expect.any(String),
    });
    expect(await alerts(ctx)).toMatchObject([
      { delivery: { status: 'Delivered' }, resolutionDelivery: { status: 'Delivered', attempts: 1 } },
    ]);
    expect(await runAlerts(ctx)).toMatchObject({ delivered: 0 });
    expect(hook.received).toHaveLength(2);
  });

  it('retries a delivery whose receiver is down at a later run, and delivers it once the receiver is up', async () => {
    const { ctx } = await testContext();
    const down = await receiver();
    const { port, url } = down;
    await down.close(); // connection refused from now on
    await rule(ctx, 'dead', 'deadLetters', 1, { webhookUrl: url });
    await deadLetter(ctx);
    expect(await runAlerts(ctx)).toMatchObject({ fired: 1, delivered: 0, deliveryRetrying: 1 });
    const [pending] = await alerts(ctx);
    expect(pending!.delivery).toMatchObject({
      status: 'Pending',
      attempts: 1,
      lastError: expect.stringMatching(/ECONNREFUSED/),
    });
    // Not due again before its backoff (a minute).
    expect(await runAlerts(ctx)).toMatchObject({ delivered: 0, deliveryRetrying: 0 });

    const up = await receiver(port);
    expect(await runAlerts(at(ctx, 1.1))).toMatchObject({ delivered: 1 });
    expect(up.received).toMatchObject([{ event: 'fired', rule: 'dead' }]);
    expect(await alerts(ctx)).toMatchObject([{ delivery: { status: 'Delivered', attempts: 2 } }]);
  });

  it('a slow receiver holds the run up for the timeout at most; the delivery is retried later', async () => {
    const { ctx } = await testContext({
      alerts: { ...(await testContext()).ctx.alerts, timeoutMs: 500 },
    });
    const slow = await receiver();
    slow.answer = (_request, response) => setTimeout(() => response.writeHead(204).end(), 3000);
    const fast = await receiver();
    await rule(ctx, 'slow', 'deadLetters', 1, { webhookUrl: slow.url });
    await rule(ctx, 'fast', 'deadLetters', 1, { webhookUrl: fast.url });
    await deadLetter(ctx);
    const started = Date.now();
    const run = await runJob(ctx, 'alerts');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(run.counts).toMatchObject({ fired: 2, delivered: 1, deliveryRetrying: 1 });
    expect(fast.received).toHaveLength(1);
    const slowAlert = (await alerts(ctx)).find((a) => a.rule === 'slow');
    expect(slowAlert!.delivery).toMatchObject({ status: 'Pending', lastError: 'no answer within 0.5 s' });

    slow.answer = (_request, response) => response.writeHead(200).end();
    expect(await runAlerts(at(ctx, 1.1))).toMatchObject({ delivered: 1 });
    expect((await alerts(ctx)).find((a) => a.rule === 'slow')!.delivery).toMatchObject({ status: 'Delivered' });
  });

  it('does not follow a redirect: a 3xx is a failed delivery', async () => {
    const { ctx } = await testContext();
    const elsewhere = await receiver();
    const redirecting = await receiver();
    redirecting.answer = (_request, response) => response.writeHead(307, { Location: elsewhere.url }).end();
    await rule(ctx, 'dead', 'deadLetters', 1, { webhookUrl: redirecting.url });
    await deadLetter(ctx);
    expect(await runAlerts(ctx)).toMatchObject({ delivered: 0, deliveryRetrying: 1 });
    expect(redirecting.received).toHaveLength(1);
    expect(elsewhere.received).toHaveLength(0);
    expect((await alerts(ctx))[0]!.delivery).toMatchObject({
      status: 'Pending',
      lastError: expect.stringMatching(/307.*redirect/),
    });
  });

  it('gives up after the last attempt, and refuses at delivery a URL the settings no longer allow', async () => {
    const { ctx } = await testContext();
    const failing = await receiver();
    failing.answer = (_request, response) => response.writeHead(500).end();
    const limited = { ...ctx, alerts: { ...ctx.alerts, maxAttempts: 2 } };
    await rule(ctx, 'dead', 'deadLetters', 1, { webhookUrl: failing.url });
    await deadLetter(ctx);
    expect(await runAlerts(limited)).toMatchObject({ deliveryRetrying: 1 });
    expect(await runAlerts(at(limited, 1.1))).toMatchObject({ deliveryFailed: 1 });
    expect(await runAlerts(at(limited, 5))).toMatchObject({ resolved: 0, deliveryFailed: 0, deliveryRetrying: 0 });
    expect((await alerts(ctx))[0]!.delivery).toEqual({ status: 'Failed', attempts: 2, lastError: 'answered 500' });

    // Loopback was allowed when the rule was saved, not any more when its resolution is delivered.
    const strict = { ...at(ctx, 11), alerts: { ...ctx.alerts, webhooks: { hosts: [], allowLoopback: false } } };
    expect(await runAlerts(strict)).toMatchObject({ resolved: 1, deliveryFailed: 1 });
    expect((await alerts(ctx))[0]!.resolutionDelivery).toMatchObject({
      status: 'Failed',
      attempts: 1,
      lastError: expect.stringMatching(/ALERT_WEBHOOK_ALLOW_LOOPBACK/),
    });
    expect(failing.received).toHaveLength(2);
  });
});

describe('alert rule validation', () => {
  it('refuses webhook URLs outside the policy, naming why under errors.webhookUrl, and stores nothing', async () => {
    const { ctx } = await testContext({
      alerts: { ...(await testContext()).ctx.alerts, webhooks: { hosts: ['hooks.example.com'], allowLoopback: false } },
    });
    const cases: [string, RegExp][] = [
      ['http://hooks.example.com/x', /https/],
      ['https://evil.example.com/x', /not in ALERT_WEBHOOK_HOSTS/],
      ['https://user:secret@hooks.example.com/x', /credentials/],
      ['http://127.0.0.1:8080/x', /ALERT_WEBHOOK_ALLOW_LOOPBACK/],
      ['https://localhost/x', /ALERT_WEBHOOK_ALLOW_LOOPBACK/],
      ['http://[::1]/x', /ALERT_WEBHOOK_ALLOW_LOOPBACK/],
      ['not a url', /not a URL/],
    ];
    for (const [webhookUrl, why] of cases) {
      const refused = setAlertRule(ctx, {
        name: 'r',
        metric: 'syncErrors',
        threshold: 1,
        windowMinutes: 5,
        webhookUrl,
      });
      await expect(refused, webhookUrl).rejects.toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: { webhookUrl: [expect.stringMatching(why)] },
      });
    }
    expect((await listAlertRules(ctx)).items).toEqual([]);
    const ok = await setAlertRule(ctx, {
      name: 'r',
      metric: 'syncErrors',
      threshold: 1,
      windowMinutes: 5,
      webhookUrl: 'https://HOOKS.example.com/x',
    });
    expect(ok).toMatchObject({ name: 'r', webhookUrl: 'https://HOOKS.example.com/x', firing: false });
  });
});

describe('the webhook outbox', () => {
  it('counts an attempt’s outcome once: a second taker of the same delivery conflicts and changes nothing', async () => {
    const { ctx } = await testContext();
    const firedAt = new Date().toISOString();
    const payload: WebhookPayload = {
      event: 'fired',
      id: 'x',
      rule: 'r',
      metric: 'deadLetters',
      threshold: 1,
      windowMinutes: 10,
      firedAt,
      link: 'http://localhost/',
    };
    const delivery = { rule: 'r', firedAt, event: 'fired' as const, url: 'http://127.0.0.1:9/hook', payload };
    await ctx.store.alerts.recordFiring(
      { rule: 'r', metric: 'deadLetters', value: 1, threshold: 1, windowMinutes: 10, firedAt },
      { ...delivery, attempts: 0, nextAttemptAt: firedAt },
    );
    const later = new Date(Date.now() + MINUTE).toISOString();
    const [taken] = await ctx.store.alerts.dueDeliveries(later, 10);
    // One taker retries later, under the ETag it read; another, with the same ETag, conflicts.
    await ctx.store.alerts.deliveryAttempted(taken!, { status: 'Pending', attempts: 1, nextAttemptAt: later });
    await expect(
      ctx.store.alerts.deliveryAttempted(taken!, { status: 'Delivered', attempts: 1, deliveredAt: later }),
    ).rejects.toMatchObject({ reason: 'changed' });
    const [again] = await ctx.store.alerts.dueDeliveries(later, 10);
    expect(again!.value.attempts).toBe(1);
    // Finished under the current ETag, it leaves the outbox; the stale taker finds it gone, and nothing comes back.
    await ctx.store.alerts.deliveryAttempted(again!, { status: 'Delivered', attempts: 2, deliveredAt: later });
    await expect(
      ctx.store.alerts.deliveryAttempted(taken!, { status: 'Failed', attempts: 2, lastError: 'x' }),
    ).rejects.toMatchObject({ statusCode: 404 });
    expect(await ctx.store.alerts.dueDeliveries(later, 10)).toEqual([]);
    const [alert] = (await ctx.store.alerts.page(10)).items;
    expect(alert!.delivery).toMatchObject({ status: 'Delivered', attempts: 2 });
  });
});
