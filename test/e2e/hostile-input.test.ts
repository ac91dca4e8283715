import { TableClient, TableServiceClient } from '@azure/data-tables';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';

import { customerPatchSchema, customerSchema } from '../../shared/domain/customer';
import { LONE_SURROGATE } from '../../shared/http/request';
import {
  alertRuleBodySchema,
  bulkResyncSchema,
  couplingBodySchema,
  matchBodySchema,
  operationEditSchema,
  retryAllBodySchema,
  synchronizeBodySchema,
} from '../../shared/http/schemas';
import { person } from '../support';
import { eventually, type Stack, startStack } from './stack';

/**
 * Property-based tests over every endpoint's body, path, query and headers: random and adversarial values
 * (prototype keys, huge strings, deep nesting, invalid Unicode and UTF-8, OData syntax) sent over HTTP to the
 * local host. Whatever comes in: never a 5xx; a refusal is problem+json without a stack trace; and a refused
 * request writes nothing (a fingerprint of every table the stack owns is unchanged).
 *
 * CI runs HOSTILE_RUNS (default 60) inputs per endpoint; `HOSTILE_RUNS=1000 npx vitest run
 * test/e2e/hostile-input.test.ts` runs many more. HOSTILE_SEED replays a run.
 */
const RUNS = Number(process.env.HOSTILE_RUNS ?? 60);
const SEED = process.env.HOSTILE_SEED === undefined ? undefined : Number(process.env.HOSTILE_SEED);

let stack: Stack;
let service: TableServiceClient;
const data = { operationId: '', failedId: '', asyncAccount: '', customerAccount: '', failedEtag: '' };
let tried = 0;

beforeAll(async () => {
  stack = await startStack();
  service = TableServiceClient.fromConnectionString(stack.settings.STORAGE_CONNECTION_STRING!, {
    allowInsecureConnection: true,
  });
  const web = stack.token('Channel', 'web');
  const submit = async (customer: unknown) =>
    (await (await stack.call('POST', '/channels/web/customers', { token: web, body: customer })).json()) as Record<
      string,
      string
    >;
  const good = await submit(person());
  const bad = await submit(person({ customerGroup: 'NoSuchGroup' }));
  const settled = (id: string, status: string) =>
    eventually(
      async () => {
        const response = await stack.call('GET', `/operations/${id}`, { token: stack.token('Sync.Reader') });
        const body = (await response.json()) as { status: string; customerAccount: string };
        return body.status === status ? { body, etag: response.headers.get('etag')! } : undefined;
      },
      5000,
      `${id} to be ${status}`,
    );
  const synced = await settled(good.operationId!, 'Synced');
  const failed = await settled(bad.operationId!, 'Failed');
  Object.assign(data, {
    operationId: good.operationId,
    failedId: bad.operationId,
    asyncAccount: good.asyncCustomerAccount,
    customerAccount: synced.body.customerAccount,
    failedEtag: failed.etag,
  });
});
afterAll(async () => {
  console.log(`hostile input: ${tried} requests tried, none answered 5xx`);
  await stack?.stop();
});

/** Every table of this stack, as (name, entity count, newest timestamp): any write changes it. */
async function fingerprint(): Promise<string> {
  const prefix = stack.settings.TABLE_PREFIX!;
  const parts: string[] = [];
  for await (const table of service.listTables()) {
    // JobRuns: the host's own timers record their runs there whatever the requests do.
    if (!table.name?.startsWith(prefix) || table.name === `${prefix}JobRuns`) continue;
    const client = TableClient.fromConnectionString(stack.settings.STORAGE_CONNECTION_STRING!, table.name, {
      allowInsecureConnection: true,
    });
    let count = 0;
    let newest = '';
    for await (const e of client.listEntities({ queryOptions: { select: ['Timestamp'] } })) {
      count++;
      const at = String((e as { timestamp?: string }).timestamp ?? '');
      if (at > newest) newest = at;
    }
    parts.push(`${table.name}:${count}:${newest}`);
  }
  return parts.sort().join('\n');
}

// ---- hostile values ----------------------------------------------------------------------------------

const loneSurrogate = fc.constantFrom('\uD800', '\uDBFF', '\uDC00', 'a\uD83D', '\uDE00b');
const nasty = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  "' or PartitionKey ne '",
  "x' or '1' eq '1",
  'PartitionKey eq null',
  '$filter=true',
  "''",
  '%27',
  '%00',
  '\u0000',
  '../../..',
  '..%2F..%2F',
  '😀🏳️‍🌈',
  'Æøå',
  '<script>alert(1)</script>',
  '${7*7}',
  '{{constructor.constructor("return process")()}}',
  'NaN',
  '-1',
  '1e309',
  'true',
  'null',
  ' ',
  '',
);
/** Strings a client might send: adversarial constants, any Unicode, lone surrogates, and long runs. */
const hostileString = fc.oneof(
  nasty,
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.tuple(fc.string({ maxLength: 5 }), loneSurrogate, fc.string({ maxLength: 5 })).map((parts) => parts.join('')),
  fc.integer({ min: 257, max: 5000 }).map((n) => 'x'.repeat(n)),
);
/**
 * Query values: URLs carry UTF-8, so lone surrogates become U+FFFD; kept under 1,000 characters, because Node
 * itself refuses a request line over 16 KiB before any function sees it.
 */
const queryValue = hostileString.map((s) => encodeURIComponent(s.replace(/[\uD800-\uDFFF]/g, '\uFFFD').slice(0, 1000)));
/**
 * Path segments: as query values, but never a dot-segment ('.', '..', or either spelled with %2e in any case).
 * URL parsing resolves those away, so the request would go to another path, and the host's 404 for it is not
 * the app's answer.
 */
const segment = queryValue.filter((s) => !/^(?:\.|%2e){1,2}$/i.test(s));

const prototypeKeys = fc.constantFrom('__proto__', 'constructor', 'prototype');
/** JSON values with hostile keys and strings, nested a little. */
const hostileJson = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    hostileString,
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(prototypeKeys, hostileString), tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** A body as text: JSON with hostile content, a valid customer with one field made hostile, or broken JSON. */
const anyBody = fc.oneof(
  hostileJson.map((v) => JSON.stringify(v) ?? 'null'),
  fc
    .tuple(fc.constantFrom('email', 'firstName', 'currency', 'customerType', 'address', 'attributes'), hostileJson)
    .map(([key, value]) => JSON.stringify({ ...person(), [key]: value })),
  fc.tuple(prototypeKeys, hostileJson).map(([key, value]) => `{"${key}": ${JSON.stringify(value) ?? 'null'}}`),
  fc.integer({ min: 1000, max: 60_000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
  fc.integer({ min: 1000, max: 20_000 }).map((depth) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)),
  fc.constantFrom('', '{', '{"a":1,}', "{'a':1}", 'undefined', '\uFEFF{}', '{"a":"\\ud800"}', 'x'.repeat(300_000)),
  fc.string({ unit: 'binary', maxLength: 200 }),
);

/**
 * Bodies the endpoint must refuse: the hostile ones its schema rejects, that are not JSON, or that hold
 * invalid Unicode. (A hostile value can be a fine name — 'Æøå' or even "' or 1 eq 1" — and then it is
 * stored literally: the last test below.)
 */
/** Whether a body is one the API takes: JSON (a leading byte order mark allowed, as RFC 8259 lets parsers) the schema accepts. */
const validJson = (body: string | Buffer | undefined, schema: z.ZodType) => {
  try {
    const text = String(body).replace(/^\uFEFF/, '');
    return !LONE_SURROGATE.test(text) && schema.safeParse(JSON.parse(text)).success;
  } catch {
    return false;
  }
};
const refusedBody = (schema: z.ZodType) =>
  anyBody.filter((text) => {
    try {
      return LONE_SURROGATE.test(text) || !schema.safeParse(JSON.parse(text)).success;
    } catch {
      return true;
    }
  });
const contentType = fc.oneof(
  { weight: 4, arbitrary: fc.constant('application/json') },
  fc.constantFrom('text/plain', 'application/xml', 'application/json; charset=utf-16', 'multipart/form-data', ''),
);
/** Raw bytes that are not UTF-8 at all. */
const invalidUtf8 = fc.constantFrom(
  Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
  Buffer.from([0xc3, 0x28]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.concat([Buffer.from(JSON.stringify(person()).slice(0, -2)), Buffer.from([0x80, 0x22, 0x7d])]),
);

// ---- the checks ----------------------------------------------------------------------------------------

interface Sent {
  method: string;
  path: string;
  token?: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

async function send(request: Sent): Promise<{ status: number; text: string; type: string }> {
  tried++;
  const headers: Record<string, string> = { ...request.headers };
  if (request.token) headers.Authorization = `Bearer ${request.token}`;
  const response = await fetch(`${stack.baseUrl}${request.path}`, {
    method: request.method,
    headers,
    body: request.body,
  });
  return { status: response.status, text: await response.text(), type: response.headers.get('content-type') ?? '' };
}

function expectProblemOrSuccess(request: Sent, result: { status: number; text: string; type: string }) {
  const where = `${request.method} ${request.path.slice(0, 200)} → ${result.status} ${result.text.slice(0, 300)}`;
  expect(result.status, where).toBeLessThan(500);
  if (result.status >= 400) {
    expect(result.type, where).toMatch(/^application\/problem\+json/);
    const problem = JSON.parse(result.text) as Record<string, unknown>;
    expect(problem, where).toMatchObject({
      status: result.status,
      code: expect.any(String),
      title: expect.any(String),
    });
    expect(result.text, where).not.toMatch(/\bat .+\.(ts|js):\d+|node_modules/);
  }
}

/** A property over requests that must all be refused, and leave storage exactly as it was. */
async function refusedAndNothingWritten(arbitrary: fc.Arbitrary<Sent>) {
  const before = await fingerprint();
  await fc.assert(
    fc.asyncProperty(arbitrary, async (request) => {
      const result = await send(request);
      expectProblemOrSuccess(request, result);
      expect(result.status, `${request.method} ${request.path.slice(0, 200)} was accepted`).toBeGreaterThanOrEqual(400);
    }),
    { numRuns: RUNS, seed: SEED },
  );
  expect(await fingerprint()).toBe(before);
}

/** A property over reads: anything goes, but never a 5xx and every refusal is a problem. */
async function neverAFault(arbitrary: fc.Arbitrary<Sent>) {
  await fc.assert(
    fc.asyncProperty(arbitrary, async (request) => expectProblemOrSuccess(request, await send(request))),
    { numRuns: RUNS, seed: SEED },
  );
}

const channel = () => stack.token('Channel', 'web');
const operator = () => stack.token('Sync.Operator');
const withBody = (method: string, path: () => string, token: () => string, schema: z.ZodType) =>
  fc.oneof(
    fc.record({ body: refusedBody(schema), type: contentType }).map(({ body, type }): Sent => ({
      method,
      path: path(),
      token: token(),
      body,
      headers: { 'Content-Type': type },
    })),
    invalidUtf8.map((body): Sent => ({
      method,
      path: path(),
      token: token(),
      body,
      headers: { 'Content-Type': 'application/json' },
    })),
  );

describe('hostile input: never a 5xx, always problem+json, never a write', { timeout: 30_000 + RUNS * 200 }, () => {
  it('POST /channels/{channelId}/customers: hostile bodies, channel ids and Idempotency-Keys', async () => {
    await refusedAndNothingWritten(
      fc.oneof(
        withBody('POST', () => '/channels/web/customers', channel, customerSchema),
        segment
          .map((ch): Sent => ({
            method: 'POST',
            path: `/channels/${ch || '%20'}/customers`,
            token: stack.token('Channel', decodeURIComponent(ch)),
            body: JSON.stringify(person()),
            headers: { 'Content-Type': 'application/json' },
          }))
          .filter((r) => !/^\/channels\/[A-Za-z0-9][A-Za-z0-9_-]{0,63}\/customers$/.test(r.path)),
        hostileString
          // Header values are visible ASCII (fetch refuses others) and trimmed on the way.
          .filter((key) => /^[\x20-\x7e]*$/.test(key) && !/^[\x21-\x7e]{1,200}$/.test(key.trim()))
          .map((key): Sent => ({
            method: 'POST',
            path: '/channels/web/customers',
            token: channel(),
            body: JSON.stringify(person()),
            headers: { 'Content-Type': 'application/json', 'Idempotency-Key': key },
          })),
      ),
    );
  });

  it('PATCH /channels/{channelId}/customers/{account}: hostile patches and accounts', async () => {
    await refusedAndNothingWritten(
      fc.oneof(
        withBody('PATCH', () => `/channels/web/customers/${data.asyncAccount}`, channel, customerPatchSchema),
        segment.map((account): Sent => ({
          method: 'PATCH',
          path: `/channels/web/customers/${account || '%20'}`,
          token: channel(),
          body: JSON.stringify({ phone: '+4511111111' }),
          headers: { 'Content-Type': 'application/json' },
        })),
      ),
    );
  });

  it('PATCH /operations/{operationId}: hostile edits, ids and If-Match values', async () => {
    await refusedAndNothingWritten(
      fc.oneof(
        withBody('PATCH', () => `/operations/${data.failedId}`, operator, operationEditSchema).map((r): Sent => ({
          ...r,
          headers: { ...r.headers, 'If-Match': data.failedEtag },
        })),
        fc
          .tuple(
            segment,
            hostileString.filter((s) => /^[\x20-\x7e]*$/.test(s)),
          )
          .map(([id, etag]): Sent => ({
            method: 'PATCH',
            path: `/operations/${id || '%20'}`,
            token: operator(),
            body: JSON.stringify({ attributes: { customerGroup: 'Retail' } }),
            headers: { 'Content-Type': 'application/json', 'If-Match': etag.trim() || 'W/"x"' },
          })),
      ),
    );
  });

  it('POST /operations/{operationId}/sync and /jobs/{job}/run: hostile ids and job names', async () => {
    await refusedAndNothingWritten(
      fc.oneof(
        segment
          .filter((id) => id !== 'sync')
          .map((id): Sent => ({ method: 'POST', path: `/operations/${id || '%20'}/sync`, token: operator() })),
        segment.map((job): Sent => ({ method: 'POST', path: `/jobs/${job || '%20'}/run`, token: operator() })),
      ),
    );
  });

  it('DELETE /customers/{account}: hostile accounts and Idempotency-Keys', async () => {
    await refusedAndNothingWritten(
      fc.oneof(
        segment.map((account): Sent => ({
          method: 'DELETE',
          path: `/customers/${account || '%20'}`,
          token: operator(),
        })),
        hostileString
          .filter((key) => /^[\x20-\x7e]*$/.test(key) && !/^[\x21-\x7e]{1,200}$/.test(key.trim()))
          .map((key): Sent => ({
            method: 'DELETE',
            path: `/customers/${data.customerAccount}`,
            token: operator(),
            headers: { 'Idempotency-Key': key },
          })),
      ),
    );
  });

  it('POST /operations/sync: hostile bulk bodies', async () => {
    await refusedAndNothingWritten(
      fc.oneof(
        withBody('POST', () => '/operations/sync', operator, bulkResyncSchema),
        fc
          .array(hostileString, { minLength: 1, maxLength: 5 })
          .map((fields) => JSON.stringify({ filter: { status: 'Failed', field: fields } }))
          .filter((body) => !bulkResyncSchema.safeParse(JSON.parse(body)).success)
          .map((body): Sent => ({
            method: 'POST',
            path: '/operations/sync',
            token: operator(),
            body,
            headers: { 'Content-Type': 'application/json' },
          })),
      ),
    );
  });

  it('coupling and sync-error actions: hostile accounts and bodies', async () => {
    const actions = ['retry', 'synchronize', 'restore', 'delete'];
    await refusedAndNothingWritten(
      fc.oneof(
        fc.tuple(segment, fc.constantFrom(...actions)).map(([account, action]): Sent => ({
          method: 'POST',
          path: `/sync-errors/${account || '%20'}/${action}`,
          token: operator(),
          body: JSON.stringify({ use: 'hq' }),
          headers: { 'Content-Type': 'application/json' },
        })),
        segment.map((account): Sent => ({
          method: 'DELETE',
          path: `/couplings/${account || '%20'}`,
          token: operator(),
        })),
        withBody('POST', () => `/sync-errors/${data.customerAccount}/synchronize`, operator, synchronizeBodySchema),
        // Nearly any object is a valid Retry all body ({} is), so only what it refuses is sent.
        withBody('POST', () => '/sync-errors/retry', operator, retryAllBodySchema).filter(
          (r) => !validJson(r.body, retryAllBodySchema),
        ),
        withBody('PUT', () => `/couplings/${data.customerAccount}`, operator, couplingBodySchema),
        withBody('POST', () => '/couplings/match', operator, matchBodySchema),
      ),
    );
  });

  it('PUT and DELETE /alert-rules/{name}: hostile rules, webhook URLs and names', async () => {
    const rule = { metric: 'syncErrors', threshold: 5, windowMinutes: 10 };
    const json = { 'Content-Type': 'application/json' };
    await refusedAndNothingWritten(
      fc.oneof(
        withBody('PUT', () => '/alert-rules/hostile', operator, alertRuleBodySchema),
        // A well-formed rule whose webhook URL is hostile: refused by the webhook policy, not stored.
        fc
          .oneof(
            hostileString,
            fc.constantFrom(
              'http://hooks.example.com/x',
              'https://user:pw@hooks.example.com/',
              'https://169.254.169.254/latest/meta-data',
              'file:///etc/passwd',
              'https://hooks.example.com.evil.io/',
            ),
          )
          .map((webhookUrl): Sent => ({
            method: 'PUT',
            path: '/alert-rules/hostile',
            token: operator(),
            body: JSON.stringify({ ...rule, webhookUrl }),
            headers: json,
          })),
        segment
          .filter((name) => !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name))
          .map((name): Sent => ({
            method: 'PUT',
            path: `/alert-rules/${name || '%20'}`,
            token: operator(),
            body: JSON.stringify(rule),
            headers: json,
          })),
        segment.map((name): Sent => ({ method: 'DELETE', path: `/alert-rules/${name || '%20'}`, token: operator() })),
      ),
    );
  });

  it('GET /operations, /failures, /jobs, /customer-updates: hostile query strings', async () => {
    const keys = fc.constantFrom(
      'channel',
      'status',
      'type',
      'customerAccount',
      'asyncCustomerAccount',
      'from',
      'to',
      'field',
      'value',
      'top',
      'continuationToken',
      'cursor',
      '__proto__',
      '$filter',
    );
    const query = fc
      .array(fc.tuple(fc.oneof(keys, queryValue), queryValue), { maxLength: 6 })
      .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&'));
    await neverAFault(
      fc
        .tuple(
          fc.constantFrom(
            '/operations',
            '/failures',
            '/jobs',
            '/channels/web/customer-updates',
            '/alerts',
            '/alert-rules',
            '/sync-errors',
          ),
          query,
          fc.boolean(),
        )
        .map(([path, q, csv]): Sent => ({
          method: 'GET',
          path: `${path}?${q}`,
          token: path.startsWith('/channels') ? channel() : operator(),
          headers: csv ? { Accept: 'text/csv' } : {},
        })),
    );
  });

  it('GET /operations/{operationId} and /customers/{account}: hostile ids', async () => {
    await neverAFault(
      fc
        .tuple(fc.constantFrom('/operations/', '/customers/'), segment)
        .map(([path, id]): Sent => ({ method: 'GET', path: `${path}${id || '%20'}`, token: operator() })),
    );
  });

  it('a valid customer but for one lone surrogate (as a JSON escape) is refused as invalid Unicode', async () => {
    const before = await fingerprint();
    for (const [field, escaped] of [
      ['lastName', '\\ud800'],
      ['firstName', 'x\\udfff'],
      ['city', '\\ude00\\ud83d'],
    ]) {
      const text = JSON.stringify(person()).replace(`"${field}":"`, `"${field}":"${escaped}`);
      const result = await send({
        method: 'POST',
        path: '/channels/web/customers',
        token: channel(),
        body: text,
        headers: { 'Content-Type': 'application/json' },
      });
      expect(result.status, text).toBe(400);
      expect(JSON.parse(result.text)).toMatchObject({ errors: { '': ['is not valid Unicode'] } });
    }
    expect(await fingerprint()).toBe(before);
  });

  it('a valid customer whose text is OData, script or emoji is stored literally, not interpreted', async () => {
    const values = ["O'Brien' or '1' eq '1", '<script>alert(1)</script>', 'Æøå 😀', '${7*7}', "''"];
    for (const value of values) {
      const customer = person({ lastName: value, attributes: { note: value } });
      const response = await stack.call('POST', '/channels/web/customers', { token: channel(), body: customer });
      expect(response.status).toBe(202);
      const { operationId } = (await response.json()) as { operationId: string };
      const op = await eventually(async () => {
        const r = await stack.call('GET', `/operations/${operationId}`, { token: operator() });
        const body = (await r.json()) as { status: string; customerAccount: string };
        return body.status === 'Synced' ? body : undefined;
      });
      const stored = (await (
        await stack.call('GET', `/customers/${op.customerAccount}`, { token: operator() })
      ).json()) as { customer: { lastName: string; attributes: { note: string } } };
      expect(stored.customer.lastName).toBe(value);
      expect(stored.customer.attributes.note).toBe(value);
      const found = (await (
        await stack.call('GET', `/operations?field=lastName&value=${encodeURIComponent(value)}`, { token: operator() })
      ).json()) as { items: { operationId: string }[] };
      expect(found.items.map((i) => i.operationId)).toEqual([operationId]);
    }
  });
});
