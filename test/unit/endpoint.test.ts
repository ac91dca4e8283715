import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';

import { signDevToken } from '../../local/dev-token';
import { DomainError, type ErrorCode } from '../../shared/domain/errors';
import { TokenVerifier } from '../../shared/http/auth';
import { CHANNELS, endpoint, endpoints, json, OPERATORS, READERS } from '../../shared/http/endpoint';
import type { HttpResult } from '../../shared/http/problem';
import type { HttpRequestLike } from '../../shared/http/request';
import { channelParams, ifMatchHeaders } from '../../shared/http/schemas';

// The endpoint wrapper builds on the composition root; here it gets a token verifier and no storage.
const settings = { issuer: 'https://issuer.test/', audience: 'api://customer-sync', channelClaim: 'channel' };
const secret = 'a-test-secret-of-sufficient-length';
const opened = vi.hoisted(() => ({ count: 0 }));
vi.mock('../../shared/app', () => ({
  services: () => ({
    verifier: new TokenVerifier({ ...settings, devSecret: 'a-test-secret-of-sufficient-length' }),
    context: async () => {
      opened.count++;
      return {};
    },
  }),
}));

const token = (roles: string[], channel?: string) =>
  `Bearer ${signDevToken(secret, { iss: settings.issuer, aud: settings.audience, roles, ...(channel ? { channel } : {}) })}`;

function request(options: { params?: Record<string, string>; headers?: Record<string, string>; body?: string } = {}) {
  const bytes = Buffer.from(options.body ?? '');
  return {
    method: 'POST',
    url: 'http://localhost/api/x',
    headers: new Headers({ 'content-type': 'application/json', ...options.headers }),
    params: options.params ?? {},
    query: new URLSearchParams(),
    arrayBuffer: async () => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
  } satisfies HttpRequestLike;
}

const logged: unknown[] = [];
const log = { error: (...args: unknown[]) => logged.push(...args) };
const call = (e: ReturnType<typeof endpoint>, r: HttpRequestLike) => e.trigger.handler(r, log);
const problemOfResult = (result: HttpResult) => JSON.parse(String(result.body)) as Record<string, unknown>;

let handled = 0;
const channelEndpoint = endpoint({
  name: 'test-channel-write',
  method: 'POST',
  route: 'channels/{channelId}/things',
  summary: 'A channel writes a thing',
  access: CHANNELS,
  request: { params: channelParams, body: z.strictObject({ name: z.string() }) },
  responses: { 202: { description: 'Accepted' } },
  handle: async ({ params, body, principal }) => {
    handled++;
    return json(202, { channel: params.channelId, name: body.name, by: principal.channel });
  },
});
const conditional = endpoint({
  name: 'test-conditional',
  method: 'PATCH',
  route: 'things/{id}',
  summary: 'An operator changes a version of a thing',
  access: OPERATORS,
  request: { params: z.object({ id: z.string() }), headers: ifMatchHeaders },
  responses: { 200: { description: 'Changed' } },
  handle: async ({ headers }) => json(200, { etag: headers['if-match'] }),
});
const reading = endpoint({
  name: 'test-reading',
  method: 'GET',
  route: 'things',
  summary: 'Readers and channels read things',
  access: [...READERS, ...CHANNELS],
  request: {},
  responses: { 200: { description: 'Things' } },
  handle: async ({ principal }) => json(200, { channel: principal.channel }),
});
const open = endpoint({
  name: 'test-open',
  method: 'GET',
  route: 'open',
  summary: 'Anyone, without storage',
  access: 'anonymous',
  request: {},
  responses: { 200: { description: 'Open' } },
  handle: async ({ ctx }) => json(200, { ctx: ctx ?? null }),
});
let failure: unknown;
const failing = endpoint({
  name: 'test-failing',
  method: 'GET',
  route: 'failing',
  summary: 'Fails as told',
  access: READERS,
  request: {},
  responses: { 200: { description: 'Never' } },
  handle: async () => {
    throw failure;
  },
});

describe('an endpoint’s checks, in order', () => {
  it('is recorded with a trigger for app.http: its method and route, the token checked by the handler', () => {
    expect(endpoints).toContain(channelEndpoint);
    expect(channelEndpoint.trigger).toMatchObject({
      methods: ['POST'],
      route: 'channels/{channelId}/things',
      authLevel: 'anonymous',
    });
  });

  it('answers 401 with a Bearer challenge without a valid token, before anything else', async () => {
    const result = await call(channelEndpoint, request({ params: { channelId: '!!' }, body: 'not json' }));
    expect(result.status).toBe(401);
    expect(result.headers).toMatchObject({ 'Content-Type': 'application/problem+json', 'WWW-Authenticate': 'Bearer' });
  });

  it('answers 403 for a role the endpoint does not allow', async () => {
    const authorization = token(['Sync.Operator']);
    const result = await call(channelEndpoint, request({ params: { channelId: 'web' }, headers: { authorization } }));
    expect(result.status).toBe(403);
  });

  it('answers 403 for a Channel token that names no channel, wherever channels are let in', async () => {
    const without = await call(reading, request({ headers: { authorization: token(['Channel']) } }));
    expect(without.status).toBe(403);
    expect(problemOfResult(without).detail).toBe('This Channel token names no channel.');
    const named = await call(reading, request({ headers: { authorization: token(['Channel'], 'web') } }));
    expect(named).toMatchObject({ status: 200, jsonBody: { channel: 'web' } });
  });

  it('answers 403 for a Channel token that names a channel the service submits as (hq, crm)', async () => {
    for (const channel of ['hq', 'crm', 'HQ']) {
      const result = await call(reading, request({ headers: { authorization: token(['Channel'], channel) } }));
      expect(result.status).toBe(403);
      expect(problemOfResult(result).detail).toBe(`Channel '${channel}' is reserved for the service's own operations.`);
    }
  });

  it('reaches storage only for a request that passed every check, and never for an endpoint open to anyone', async () => {
    const before = opened.count;
    await call(channelEndpoint, request({ params: { channelId: 'web' }, body: '{"name":"a"}' }));
    await call(reading, request({ headers: { authorization: token(['Channel']) } }));
    expect(opened.count).toBe(before);
    expect(await call(open, request())).toMatchObject({ status: 200, jsonBody: { ctx: null } });
    expect(opened.count).toBe(before);
    await call(reading, request({ headers: { authorization: token(['Sync.Reader']) } }));
    expect(opened.count).toBe(before + 1);
  });

  it('checks the path, then that the channel is the token’s own, before reading the body', async () => {
    const headers = { authorization: token(['Channel'], 'web') };
    const badPath = await call(channelEndpoint, request({ params: { channelId: 'no spaces' }, headers, body: 'x' }));
    expect(badPath.status).toBe(400);
    expect(problemOfResult(badPath).errors).toHaveProperty('channelId');
    const otherChannel = await call(channelEndpoint, request({ params: { channelId: 'pos-1' }, headers, body: 'x' }));
    expect(otherChannel.status).toBe(403);
    const badBody = await call(channelEndpoint, request({ params: { channelId: 'web' }, headers, body: '{"nom":1}' }));
    expect(badBody.status).toBe(400);
    expect(handled).toBe(0);
    const ok = await call(channelEndpoint, request({ params: { channelId: 'web' }, headers, body: '{"name":"a"}' }));
    expect(ok).toMatchObject({ status: 202, jsonBody: { channel: 'web', name: 'a', by: 'web' } });
  });

  it('answers 428 when a conditional request has no If-Match', async () => {
    const headers = { authorization: token(['Sync.Operator']) };
    expect((await call(conditional, request({ params: { id: '1' }, headers }))).status).toBe(428);
    const ok = await call(conditional, request({ params: { id: '1' }, headers: { ...headers, 'if-match': 'W/"1"' } }));
    expect(ok).toMatchObject({ status: 200, jsonBody: { etag: 'W/"1"' } });
  });
});

describe('errors become problem details', () => {
  const answer = async (error: unknown) => {
    failure = error;
    return call(failing, request({ headers: { authorization: token(['Sync.Reader']) } }));
  };

  it.each([
    ['VALIDATION_FAILED', 400],
    ['UNAUTHENTICATED', 401],
    ['FORBIDDEN', 403],
    ['NOT_FOUND', 404],
    ['OPERATION_NOT_FOUND', 404],
    ['CUSTOMER_NOT_FOUND', 404],
    ['INVALID_STATE', 409],
    ['ETAG_MISMATCH', 412],
    ['PAYLOAD_TOO_LARGE', 413],
    ['UNSUPPORTED_MEDIA_TYPE', 415],
    ['IDEMPOTENCY_KEY_REUSED', 422],
    ['PRECONDITION_REQUIRED', 428],
    ['INTERNAL_ERROR', 500],
    ['SERVICE_UNAVAILABLE', 503],
  ] as [ErrorCode, number][])('%s → %i, with its code and the error’s words', async (code, status) => {
    const result = await answer(new DomainError(code, 'What happened.', { field: ['is wrong'] }));
    expect(result.status).toBe(status);
    expect(problemOfResult(result)).toEqual({
      type: `urn:customer-sync:problem:${code.toLowerCase().replace(/_/g, '-')}`,
      title: expect.any(String),
      status,
      detail: 'What happened.',
      code,
      errors: { field: ['is wrong'] },
    });
  });

  it('tells a client when to retry: storage or the broker unreachable is a 503 with Retry-After', async () => {
    for (const error of [
      Object.assign(new Error('down'), { statusCode: 503 }),
      Object.assign(new Error('x'), { code: 'ECONNREFUSED' }),
    ]) {
      const result = await answer(error);
      expect(result.status).toBe(503);
      expect(result.headers).toMatchObject({ 'Retry-After': '5' });
    }
  });

  it('turns anything unexpected into a 500 that leaks nothing, and logs it', async () => {
    const error = new Error('secret table name Customers at shared/x.ts:12');
    const result = await answer(error);
    expect(result.status).toBe(500);
    expect(String(result.body)).not.toContain('secret');
    expect(String(result.body)).not.toMatch(/\.ts:\d+/);
    expect(logged).toContain(error);
  });
});
