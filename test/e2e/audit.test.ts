import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { person } from '../support';
import { eventually, type Stack, startStack } from './stack';

let stack: Stack;
let reader: string;
let operator: string;
const created: { operationId: string; asyncCustomerAccount: string; channel: string; failed: boolean }[] = [];

async function create(channel: string, customer: object) {
  const response = await stack.call('POST', `/channels/${channel}/customers`, {
    token: stack.token('Channel', channel),
    body: customer,
  });
  expect(response.status).toBe(202);
  return (await response.json()) as { operationId: string; asyncCustomerAccount: string };
}

const get = async (path: string, token = reader) => {
  const response = await stack.call('GET', path, { token });
  return { status: response.status, body: (await response.json()) as any, headers: response.headers };
};

async function settled(operationId: string) {
  return eventually(async () => {
    const { body } = await get(`/operations/${operationId}`);
    return body.status === 'Pending' ? undefined : body;
  }, 5000);
}

beforeAll(async () => {
  stack = await startStack();
  reader = stack.token('Sync.Reader');
  operator = stack.token('Sync.Operator');
  for (let i = 0; i < 9; i++) {
    const channel = i % 3 === 0 ? 'pos-7' : 'web';
    const failed = i % 3 === 1;
    const accepted = await create(
      channel,
      person({
        customerGroup: failed ? 'Outlet' : 'Retail',
        attributes: { loyaltyTier: i % 2 ? 'Gold' : 'Silver' },
        address: {
          street: 'Vej 1',
          city: i === 4 ? "O'Brien Town" : 'Aarhus',
          postalCode: '8000',
          countryRegion: 'DK',
        },
      }),
    );
    created.push({ ...accepted, channel, failed });
  }
  for (const c of created) await settled(c.operationId);
});
afterAll(() => stack?.stop());

describe('finding operations over HTTP', () => {
  it('pages through every operation newest first, each exactly once', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const { status, body } = await get(`/operations?top=2${token ? `&continuationToken=${token}` : ''}`);
      expect(status).toBe(200);
      expect(body.items.length).toBeLessThanOrEqual(2);
      seen.push(...body.items.map((i: { operationId: string }) => i.operationId));
      token = body.continuationToken;
    } while (token);
    expect(seen).toEqual(created.map((c) => c.operationId).reverse());
  });

  it.each([
    ['channel=pos-7', (c: (typeof created)[number]) => c.channel === 'pos-7'],
    ['status=Failed', (c: (typeof created)[number]) => c.failed],
    ['status=Failed&channel=web', (c: (typeof created)[number]) => c.failed && c.channel === 'web'],
    ['type=Update', () => false],
    ['field=attributes.loyaltyTier&value=Gold', (_: unknown, i: number) => i % 2 === 1],
    ["field=address.city&value=O'Brien%20Town", (_: unknown, i: number) => i === 4],
  ])('?%s', async (query, expected) => {
    const { status, body } = await get(`/operations?${query}&top=100`);
    expect(status).toBe(200);
    expect(body.items.map((i: { operationId: string }) => i.operationId)).toEqual(
      created
        .filter((c, i) => (expected as (c: unknown, i: number) => boolean)(c, i))
        .map((c) => c.operationId)
        .reverse(),
    );
  });

  it.each([
    "' or PartitionKey ne '",
    "x' or RowKey gt '",
    'Aarhus or 1 eq 1',
    '%27%29%20or%20true',
    'ÆØÅ-😀',
    'x'.repeat(1024),
  ])('a hostile field value %j matches only literally', async (value) => {
    const { status, body } = await get(`/operations?field=address.city&value=${encodeURIComponent(value)}`);
    expect(status).toBe(200);
    expect(body.items).toEqual([]);
  });

  it.each([
    ['status=Done', 'status'],
    ['top=0', 'top'],
    ['top=1001', 'top'],
    ['from=yesterday', 'from'],
    ['field=shoeSize&value=44', 'field'],
    ['field=email', 'value'],
    ['continuationToken=bm9wZQ', 'continuationToken'],
    ['colour=red', 'colour'],
    ['from=2026-01-01T00:00:00Z&to=2025-01-01T00:00:00Z', 'from'],
  ])('?%s is a 400 naming %s', async (query, parameter) => {
    const { status, body, headers } = await get(`/operations?${query}`);
    expect(status).toBe(400);
    expect(headers.get('content-type')).toBe('application/problem+json');
    expect(Object.keys(body.errors)).toContain(parameter);
  });

  it('exports every match as CSV', async () => {
    const response = await stack.call('GET', '/operations?status=Failed', {
      token: reader,
      headers: { Accept: 'text/csv' },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = (await response.text()).trim().split('\r\n');
    expect(lines[0]).toBe(
      'operationId,channel,type,status,operationTimestamp,customerAccount,asyncCustomerAccount,changeDescription,lastErrorCode,lastErrorMessage',
    );
    expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual(
      created
        .filter((c) => c.failed)
        .map((c) => c.operationId)
        .reverse(),
    );
  });

  it('a CSV export with an invalid filter is a 400, not a truncated 200', async () => {
    const response = await stack.call('GET', '/operations?field=email&value=x&from=2025-01-01T00:00:00Z', {
      token: reader,
      headers: { Accept: 'text/csv' },
    });
    expect(response.status).toBe(400);
  });

  it('a channel sees only its own operations', async () => {
    const own = await get('/operations', stack.token('Channel', 'pos-7'));
    expect(own.body.items.every((i: { channel: string }) => i.channel === 'pos-7')).toBe(true);
    expect(own.body.items).toHaveLength(created.filter((c) => c.channel === 'pos-7').length);
    expect((await get('/operations?channel=web', stack.token('Channel', 'pos-7'))).status).toBe(403);
    const other = created.find((c) => c.channel === 'web')!;
    expect((await get(`/operations/${other.operationId}`, stack.token('Channel', 'pos-7'))).status).toBe(403);
  });

  it('groups failures by cause', async () => {
    const { status, body } = await get('/failures');
    expect(status).toBe(200);
    expect(body.items).toEqual([
      expect.objectContaining({
        code: 'CUSTOMER_GROUP_NOT_FOUND',
        count: created.filter((c) => c.failed).length,
        channels: ['pos-7', 'web'].filter((ch) => created.some((c) => c.failed && c.channel === ch)),
      }),
    ]);
  });

  it('publishes an OpenAPI document without a token', async () => {
    const response = await stack.call('GET', '/openapi.json');
    expect(response.status).toBe(200);
    const doc = (await response.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/operations', '/operations/{operationId}', '/failures']),
    );
  });
});

describe('repairing over HTTP', () => {
  it('edit with If-Match, resync, and the operation reaches Synced; every rule of the contract holds', async () => {
    const target = created.find((c) => c.failed)!;
    const path = `/operations/${target.operationId}`;
    const edit = (
      headers: Record<string, string>,
      body: unknown = { attributes: { customerGroup: 'Wholesale' } },
      token = operator,
    ) => stack.call('PATCH', path, { token, body, headers });

    const { headers } = await get(path);
    const etag = headers.get('etag')!;
    expect((await edit({})).status).toBe(428);
    expect((await edit({ 'If-Match': 'W/"stale"' })).status).toBe(412);
    expect((await edit({ 'If-Match': etag }, undefined, reader)).status).toBe(403);
    expect((await edit({ 'If-Match': etag }, { attributes: { shoeSize: 1 } })).status).toBe(400);
    const ok = await edit({ 'If-Match': etag });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('etag')).not.toBe(etag);

    expect((await stack.call('POST', `${path}/sync`, { token: reader })).status).toBe(403);
    const resync = await stack.call('POST', `${path}/sync`, { token: operator });
    expect(resync.status).toBe(202);
    expect(await resync.json()).toEqual({ operationId: target.operationId, status: 'Pending' });
    const done = await eventually(async () => {
      const { body } = await get(path);
      return body.status === 'Synced' ? body : undefined;
    });
    expect(done.history.map((h: { status: string }) => h.status)).toEqual([
      'Pending',
      'Failed',
      'Failed',
      'Pending',
      'Synced',
    ]);
    expect((await stack.call('POST', `${path}/sync`, { token: operator })).status).toBe(409);
    expect((await edit({ 'If-Match': (await get(path)).headers.get('etag')! })).status).toBe(409);
    expect((await stack.call('POST', '/operations/ASYNC-NOPE000000-1/sync', { token: operator })).status).toBe(404);
  });

  it('fixes a root cause once and resyncs the whole group with one bulk call', async () => {
    const response = await stack.call('POST', '/operations/sync', {
      token: operator,
      body: { filter: { status: 'Failed', channel: 'web' } },
    });
    expect(response.status).toBe(202);
    const result = (await response.json()) as { accepted: number; skipped: unknown[] };
    expect(result.accepted).toBeGreaterThan(0);
    const bad = await stack.call('POST', '/operations/sync', { token: operator, body: { operationIds: [] } });
    expect(bad.status).toBe(400);
  });
});
