import { afterAll, describe, expect, it } from 'vitest';

import { signDevToken } from '../../local/dev-token';
import { person } from '../support';
import { eventually, type Stack, startStack } from './stack';

/**
 * Every endpoint × every kind of credential, over HTTP against the local host: who gets in, who gets 401,
 * who gets 403. A credential that gets in receives the endpoint's normal answer for the data set up below.
 */
let stack: Stack;
const data = { operationId: '', asyncAccount: '', customerAccount: '', etag: '', toDelete: '' };

/** Starts the stack and sets up the data; the matrix is built from the document the stack serves. */
async function setUp() {
  stack = await startStack();
  const accepted = await stack.call('POST', '/channels/web/customers', {
    token: stack.token('Channel', 'web'),
    body: person(),
  });
  const { operationId, asyncCustomerAccount } = (await accepted.json()) as Record<string, string>;
  // A customer of its own for the deletion, so that the others find theirs.
  const toDelete = await stack.call('POST', '/channels/web/customers', {
    token: stack.token('Channel', 'web'),
    body: person(),
  });
  data.toDelete = ((await toDelete.json()) as Record<string, string>).asyncCustomerAccount!;
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
}

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

/** An operation of the OpenAPI document: who may call it (its bearer scopes are roles) and where. */
interface Documented {
  operationId: string;
  method: string;
  route: string;
  /** Undefined: no token needed. */
  roles?: string[];
}

/**
 * How to call an endpoint so that a credential that gets in receives its normal answer, for the data set up
 * above. An endpoint without one is still in the matrix: called with its path parameters filled in and no
 * body, a credential that gets in must get neither 401 nor 403 (nor a 5xx).
 */
interface Fixture {
  path?: () => string;
  body?: () => unknown;
  headers?: () => Record<string, string>;
  ok: number;
  /** The data belongs to channel web: another channel's token gets 403. */
  ownedByWeb?: boolean;
}

const FIXTURES: Record<string, Fixture> = {
  'health-get': { ok: 200 },
  'openapi-get': { ok: 200 },
  'channel-customers-create': { body: () => person(), ok: 202 },
  'channel-customers-update': {
    path: () => `/channels/web/customers/${data.asyncAccount}`,
    body: () => ({ phone: '+4512345678' }),
    ok: 202,
  },
  'channel-customer-updates-list': { ok: 200 },
  // A channel lists only its own operations (tested in audit.test.ts): another channel's token gets its own.
  'operations-list': { ok: 200 },
  'operation-get': { ok: 200, ownedByWeb: true },
  'operation-update': {
    body: () => ({ attributes: { phone: '+4587654321' } }),
    headers: () => ({ 'If-Match': data.etag }),
    ok: 409, // it is Synced: only a Failed operation can be edited
  },
  'operation-resync': { ok: 409 },
  'operations-resync': { body: () => ({ operationIds: [data.operationId] }), ok: 202 },
  'failures-list': { ok: 200 },
  'customer-get': { ok: 200 },
  'customer-delete': { path: () => `/customers/${data.toDelete}`, ok: 202 },
  'jobs-list': { ok: 200 },
  'dead-letters-list': { ok: 200 },
  'job-run': { ok: 200 },
  'coupling-get': { ok: 404 }, // not coupled
  'coupling-set': { body: () => ({ crmTable: 'contacts', crmId: '00000000-0000-4000-8000-000000000001' }), ok: 404 },
  'coupling-remove': { ok: 404 },
  'couplings-match': { body: () => ({ fields: ['email'] }), ok: 202 },
  'customer-sync-log': { ok: 200 },
  'sync-errors-list': { ok: 200 },
  // The customer has no sync error: each action on it is 404, Retry all finds nothing to retry.
  'sync-error-retry': { ok: 404 },
  'sync-error-synchronize': { body: () => ({ use: 'hq' }), ok: 404 },
  'sync-error-restore': { ok: 404 },
  'sync-error-delete': { ok: 404 },
  'sync-errors-retry': { body: () => ({}), ok: 202 },
  'alert-rule-set': { body: () => ({ metric: 'syncErrors', threshold: 1000, windowMinutes: 5 }), ok: 200 },
  'alert-rules-list': { ok: 200 },
  'alert-rule-remove': { path: () => '/alert-rules/never-set', ok: 404 },
  'alerts-list': { ok: 200 },
};

/** Path parameters by name, for the data set up above. */
const PARAMETERS: Record<string, () => string> = {
  channelId: () => 'web',
  account: () => data.customerAccount,
  operationId: () => data.operationId,
  job: () => 'sync-pending-operations',
  name: () => 'authorization-matrix',
};

const roleOf = (credential: Credential) => (credential.startsWith('Channel') ? 'Channel' : credential);

/** What a credential gets: derived from the document's roles, and the fixture's answer for those who get in. */
function expected(endpoint: Documented, credential: Credential): number | 'in' {
  const fixture = FIXTURES[endpoint.operationId];
  const getsIn = fixture?.ok ?? 'in';
  if (!endpoint.roles) return getsIn;
  if (INVALID.includes(credential)) return 401;
  if (!endpoint.roles.includes(roleOf(credential))) return 403;
  if (credential === 'Channel (no channel)') return 403; // a Channel token must name its channel
  // A `{channelId}` in the route must be the token's own channel; some data belongs to one.
  const channelBound = endpoint.route.includes('{channelId}') || fixture?.ownedByWeb;
  if (credential === 'Channel (other)' && channelBound) return 403;
  return getsIn;
}

const pathOf = (endpoint: Documented) =>
  FIXTURES[endpoint.operationId]?.path?.() ??
  endpoint.route.replace(/\{([^}]+)\}/g, (_, name: string) => PARAMETERS[name]?.() ?? name);

describe('authorization matrix: every endpoint × every credential', async () => {
  await setUp();
  afterAll(() => stack?.stop());
  // The document served by the app is the list of endpoints: a new endpoint is in the matrix by being written.
  const doc = (await (await fetch(`${stack.baseUrl}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, { operationId: string; security?: { bearer?: string[] }[] }>>;
  };
  const endpoints: Documented[] = Object.entries(doc.paths).flatMap(([route, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      operationId: op.operationId,
      method: method.toUpperCase(),
      route,
      roles: op.security?.[0]?.bearer,
    })),
  );
  const matrix = endpoints.flatMap((endpoint) =>
    CREDENTIALS.map(
      (credential) => [endpoint.operationId, credential, expected(endpoint, credential), endpoint] as const,
    ),
  );

  it.each(matrix)('%s with %s → %s', async (_name, credential, status, endpoint) => {
    const fixture = FIXTURES[endpoint.operationId];
    const auth = header(credential);
    const response = await stack.call(endpoint.method, pathOf(endpoint), {
      body: fixture?.body?.(),
      headers: { ...fixture?.headers?.(), ...(auth ? { Authorization: auth } : {}) },
    });
    const text = await response.text();
    if (status === 'in') {
      expect(response.status, text).not.toBeOneOf([401, 403]);
      expect(response.status, text).toBeLessThan(500);
      return;
    }
    expect(response.status, text).toBe(status);
    if (status === 401 || status === 403) {
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(text)).toMatchObject({ status, code: status === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN' });
    }
    if (status === 401) expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('documents the roles the contract gives: no token for health and the document, the Channel role under a channel, Sync.Operator to change anything else, Sync.Reader to read it', () => {
    for (const { route, method, roles } of endpoints) {
      const where = `${method} ${route}`;
      if (route === '/health' || route === '/openapi.json') expect(roles, where).toBeUndefined();
      else if (route.startsWith('/channels/{channelId}/')) expect(roles, where).toEqual(['Channel']);
      else if (method !== 'GET') expect(roles, where).toEqual(['Sync.Operator']);
      // A channel reads its own operations (and nothing else of the operators' pages).
      else if (route === '/operations' || route === '/operations/{operationId}') {
        expect(new Set(roles), where).toEqual(new Set(['Sync.Reader', 'Sync.Operator', 'Channel']));
      } else expect(new Set(roles), where).toEqual(new Set(['Sync.Reader', 'Sync.Operator']));
    }
  });

  it('has a fixture for every endpoint, and no fixture for an endpoint that is gone', () => {
    expect(new Set(Object.keys(FIXTURES))).toEqual(new Set(endpoints.map((e) => e.operationId)));
  });
});
