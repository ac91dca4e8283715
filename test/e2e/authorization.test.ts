import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { signDevToken } from '../../local/dev-token';
import { person } from '../support';
import { eventually, type Stack, startStack } from './stack';

/**
 * Every endpoint × every kind of credential, over HTTP against the local host: who gets in, who gets 401,
 * who gets 403. A credential that gets in receives the endpoint's normal answer for the data set up below.
 */
let stack: Stack;
const data = { operationId: '', asyncAccount: '', customerAccount: '', etag: '' };

beforeAll(async () => {
  stack = await startStack();
  const accepted = await stack.call('POST', '/channels/web/customers', {
    token: stack.token('Channel', 'web'),
    body: person(),
  });
  const { operationId, asyncCustomerAccount } = (await accepted.json()) as Record<string, string>;
  const op = await eventually(
    async () => {
      const response = await stack.call('GET', `/operations/${operationId}`, { token: stack.token('Sync.Reader') });
      const body = (await response.json()) as { status: string; customerAccount: string };
      return body.status === 'Synced' ? { body, etag: response.headers.get('etag')! } : undefined;
    },
    5000,
    'the create to be Synced',
  );
  Object.assign(data, {
    operationId,
    asyncAccount: asyncCustomerAccount,
    customerAccount: op.body.customerAccount,
    etag: op.etag,
  });
});
afterAll(() => stack?.stop());

type Credential =
  | 'none'
  | 'expired'
  | 'wrong audience'
  | 'wrong issuer'
  | 'wrong signature'
  | 'not a JWT'
  | 'Channel (own)'
  | 'Channel (other)'
  | 'Channel (no channel)'
  | 'Sync.Reader'
  | 'Sync.Operator';

const CREDENTIALS: Credential[] = [
  'none',
  'expired',
  'wrong audience',
  'wrong issuer',
  'wrong signature',
  'not a JWT',
  'Channel (own)',
  'Channel (other)',
  'Channel (no channel)',
  'Sync.Reader',
  'Sync.Operator',
];
const INVALID: Credential[] = CREDENTIALS.slice(0, 6);

function header(credential: Credential): string | undefined {
  const s = stack.settings;
  const claims = (roles: string[], extra: Record<string, unknown> = {}) => ({
    iss: s.AUTH_ISSUER!,
    aud: s.AUTH_AUDIENCE!,
    roles,
    ...extra,
  });
  const sign = (c: ReturnType<typeof claims>, ttl?: number, secret = s.AUTH_DEV_SECRET!) =>
    `Bearer ${signDevToken(secret, c, ttl)}`;
  switch (credential) {
    case 'none':
      return undefined;
    case 'expired':
      return sign(claims(['Sync.Operator']), -120);
    case 'wrong audience':
      return sign({ ...claims(['Sync.Operator']), aud: 'api://someone-else' });
    case 'wrong issuer':
      return sign({ ...claims(['Sync.Operator']), iss: 'https://evil.example/' });
    case 'wrong signature':
      return sign(claims(['Sync.Operator']), undefined, 'not-the-secret-but-long-enough-to-sign');
    case 'not a JWT':
      return 'Bearer let-me-in';
    case 'Channel (own)':
      return sign(claims(['Channel'], { channel: 'web' }));
    case 'Channel (other)':
      return sign(claims(['Channel'], { channel: 'pos-1' }));
    case 'Channel (no channel)':
      return sign(claims(['Channel']));
    case 'Sync.Reader':
      return sign(claims(['Sync.Reader']));
    case 'Sync.Operator':
      return sign(claims(['Sync.Operator']));
  }
}

interface Endpoint {
  name: string;
  method: string;
  path: () => string;
  body?: () => unknown;
  headers?: () => Record<string, string>;
  /** The answer for a credential that gets in (the data set up above decides which). */
  ok: number;
  /** Credentials that get in; every other valid credential gets 403, every invalid one 401. */
  allowed: Credential[];
}

const everyone: Credential[] = CREDENTIALS;
const readers: Credential[] = ['Sync.Reader', 'Sync.Operator'];
const operators: Credential[] = ['Sync.Operator'];
const ENDPOINTS: Endpoint[] = [
  { name: 'health', method: 'GET', path: () => '/health', ok: 200, allowed: everyone },
  { name: 'openapi', method: 'GET', path: () => '/openapi.json', ok: 200, allowed: everyone },
  {
    name: 'create a customer',
    method: 'POST',
    path: () => '/channels/web/customers',
    body: () => person(),
    ok: 202,
    allowed: ['Channel (own)'],
  },
  {
    name: 'edit a customer',
    method: 'PATCH',
    path: () => `/channels/web/customers/${data.asyncAccount}`,
    body: () => ({ phone: '+4512345678' }),
    ok: 202,
    allowed: ['Channel (own)'],
  },
  {
    name: 'customer updates feed',
    method: 'GET',
    path: () => '/channels/web/customer-updates',
    ok: 200,
    allowed: ['Channel (own)'],
  },
  {
    name: 'list operations',
    method: 'GET',
    path: () => '/operations',
    ok: 200,
    // A channel lists only its own operations (tested in audit.test.ts), and a Channel token must name one.
    allowed: ['Channel (own)', 'Channel (other)', ...readers],
  },
  {
    name: 'one operation',
    method: 'GET',
    path: () => `/operations/${data.operationId}`,
    ok: 200,
    allowed: ['Channel (own)', ...readers],
  },
  {
    name: 'edit a failed operation',
    method: 'PATCH',
    path: () => `/operations/${data.operationId}`,
    body: () => ({ attributes: { phone: '+4587654321' } }),
    headers: () => ({ 'If-Match': data.etag }),
    ok: 409, // it is Synced: only a Failed operation can be edited
    allowed: operators,
  },
  {
    name: 'resync one',
    method: 'POST',
    path: () => `/operations/${data.operationId}/sync`,
    ok: 409,
    allowed: operators,
  },
  {
    name: 'resync many',
    method: 'POST',
    path: () => '/operations/sync',
    body: () => ({ operationIds: [data.operationId] }),
    ok: 202,
    allowed: operators,
  },
  { name: 'failures', method: 'GET', path: () => '/failures', ok: 200, allowed: readers },
  { name: 'HQ customer', method: 'GET', path: () => `/customers/${data.customerAccount}`, ok: 200, allowed: readers },
  { name: 'job runs', method: 'GET', path: () => '/jobs', ok: 200, allowed: readers },
  { name: 'dead letters', method: 'GET', path: () => '/dead-letters', ok: 200, allowed: readers },
  {
    name: 'run a job',
    method: 'POST',
    path: () => '/jobs/sync-pending-operations/run',
    ok: 200,
    allowed: operators,
  },
];

const expected = (endpoint: Endpoint, credential: Credential) =>
  endpoint.allowed.includes(credential) ? endpoint.ok : INVALID.includes(credential) ? 401 : 403;

const MATRIX = ENDPOINTS.flatMap((endpoint) =>
  CREDENTIALS.map((credential) => ({ endpoint, credential, status: expected(endpoint, credential) })),
);

describe('authorization matrix: every endpoint × every credential', () => {
  it.each(MATRIX.map((row) => [row.endpoint.name, row.credential, row.status, row] as const))(
    '%s with %s → %i',
    async (_name, credential, status, { endpoint }) => {
      const auth = header(credential);
      const response = await stack.call(endpoint.method, endpoint.path(), {
        body: endpoint.body?.(),
        headers: { ...endpoint.headers?.(), ...(auth ? { Authorization: auth } : {}) },
      });
      const text = await response.text();
      expect(response.status, text).toBe(status);
      if (status === 401 || status === 403) {
        expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(JSON.parse(text)).toMatchObject({ status, code: status === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN' });
      }
      if (status === 401) expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    },
  );

  it('covers every HTTP endpoint the OpenAPI document describes', async () => {
    const doc = (await (await stack.call('GET', '/openapi.json')).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const documented = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path.replace(/\{[^}]+\}/g, '{}')}`),
    );
    const tested = ENDPOINTS.map(
      (e) =>
        `${e.method} ${e
          .path()
          .replace(data.operationId, '{}')
          .replace(data.asyncAccount, '{}')
          .replace(data.customerAccount, '{}')
          .replace('/web/', '/{}/')
          .replace('sync-pending-operations', '{}')}`,
    );
    expect(new Set(tested)).toEqual(new Set(documented));
  });
});
