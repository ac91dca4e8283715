import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { person } from '../support';
import { eventually, type Stack, startStack } from './stack';

/**
 * Alerts through the local host over HTTP: rules are validated (400 problem+json naming the field, nothing
 * stored), `POST /api/jobs/alerts/run` fires a rule and delivers its webhook to a receiver on 127.0.0.1 (the
 * stack allows loopback, as local.settings.json does), `GET /api/alerts` shows it, and deleting the firing rule
 * resolves it.
 */
let stack: Stack;
let server: Server;
const received: Record<string, unknown>[] = [];
let hookUrl = '';

beforeAll(async () => {
  stack = await startStack({ ALERT_WEBHOOK_HOSTS: 'hooks.example.com' });
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      received.push(JSON.parse(body) as Record<string, unknown>);
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await stack?.stop();
});

const operator = () => stack.token('Sync.Operator');
const put = (name: string, body: unknown) => stack.call('PUT', `/alert-rules/${name}`, { token: operator(), body });
const rules = async () =>
  (
    (await (await stack.call('GET', '/alert-rules', { token: stack.token('Sync.Reader') })).json()) as {
      items: { name: string; firing: boolean }[];
    }
  ).items;
const alerts = async () =>
  (
    (await (await stack.call('GET', '/alerts', { token: stack.token('Sync.Reader') })).json()) as {
      items: Record<string, unknown>[];
    }
  ).items;

describe('alerts over HTTP', () => {
  it('refuses an invalid rule with 400 problem+json naming each field, and stores nothing', async () => {
    const good = { metric: 'failedOperations', threshold: 1, windowMinutes: 60 };
    const cases: [string, unknown, string][] = [
      ['r1', { ...good, metric: 'cpu' }, 'metric'],
      ['r1', { ...good, threshold: 0 }, 'threshold'],
      ['r1', { ...good, threshold: 1.5 }, 'threshold'],
      ['r1', { ...good, windowMinutes: 10_081 }, 'windowMinutes'],
      ['r1', { ...good, extra: true }, 'extra'],
      ['r1', { ...good, webhookUrl: 'http://hooks.example.com/x' }, 'webhookUrl'],
      ['r1', { ...good, webhookUrl: 'https://other.example.com/x' }, 'webhookUrl'],
      ['r1', { ...good, webhookUrl: 'https://u:p@hooks.example.com/x' }, 'webhookUrl'],
    ];
    for (const [name, body, field] of cases) {
      const response = await put(name, body);
      const problem = (await response.json()) as { code: string; errors: Record<string, string[]> };
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(problem.code).toBe('VALIDATION_FAILED');
      expect(Object.keys(problem.errors), JSON.stringify(problem)).toContain(field);
    }
    const badName = await put('not%20ok', good);
    expect(badName.status).toBe(400);
    expect(((await badName.json()) as { errors: Record<string, string[]> }).errors).toHaveProperty('name');
    expect(await rules()).toEqual([]);
  });

  it('fires a rule through the job, delivers its webhook with a console link, and resolves it when the rule is deleted', async () => {
    const created = await put('failures', {
      metric: 'failedOperations',
      threshold: 1,
      windowMinutes: 60,
      webhookUrl: hookUrl,
    });
    expect(created.status).toBe(200);
    expect(await created.json()).toMatchObject({ name: 'failures', webhookUrl: hookUrl, firing: false });

    const web = stack.token('Channel', 'web');
    const accepted = (await (
      await stack.call('POST', '/channels/web/customers', { token: web, body: person({ customerGroup: 'Nope' }) })
    ).json()) as { operationId: string };
    await eventually(
      async () => {
        const op = (await (
          await stack.call('GET', `/operations/${accepted.operationId}`, { token: operator() })
        ).json()) as { status: string };
        return op.status === 'Failed' ? op : undefined;
      },
      5000,
      'the create to fail',
    );

    const run = await stack.call('POST', '/jobs/alerts/run', { token: operator() });
    expect(run.status).toBe(200);
    expect(await run.json()).toMatchObject({ job: 'alerts', counts: { evaluated: 1, fired: 1, delivered: 1 } });
    expect(received).toMatchObject([
      {
        event: 'fired',
        rule: 'failures',
        metric: 'failedOperations',
        value: 1,
        threshold: 1,
        link: 'http://localhost:7071/api/console/#/operations?status=Failed',
      },
    ]);
    expect(await alerts()).toMatchObject([
      { rule: 'failures', value: 1, threshold: 1, delivery: { status: 'Delivered', attempts: 1 } },
    ]);
    expect(await rules()).toMatchObject([{ name: 'failures', firing: true }]);

    const again = await stack.call('POST', '/jobs/alerts/run', { token: operator() });
    expect(await again.json()).toMatchObject({ counts: { fired: 0, delivered: 0 } });

    expect((await stack.call('DELETE', '/alert-rules/failures', { token: operator() })).status).toBe(204);
    expect(await alerts()).toMatchObject([{ rule: 'failures', resolvedReason: 'RuleDeleted' }]);
    await stack.call('POST', '/jobs/alerts/run', { token: operator() });
    expect(received.map((p) => p.event)).toEqual(['fired', 'resolved']);
    const gone = await stack.call('DELETE', '/alert-rules/failures', { token: operator() });
    expect(gone.status).toBe(404);
    expect(gone.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('describes the alert endpoints in the OpenAPI document, with their request and response schemas', async () => {
    const doc = (await (await fetch(`${stack.baseUrl}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>>;
    };
    expect(doc.paths['/alert-rules/{name}']?.put?.requestBody).toBeDefined();
    expect(doc.paths['/alert-rules/{name}']?.put?.responses['200']).toBeDefined();
    expect(doc.paths['/alert-rules/{name}']?.delete?.responses['204']).toBeDefined();
    expect(doc.paths['/alert-rules']?.get?.responses['200']).toBeDefined();
    expect(doc.paths['/alerts']?.get?.responses['200']).toBeDefined();
  });
});
