import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { createServer } from 'node:http';
import { type AddressInfo } from 'node:net';

import { SignJWT } from 'jose';
import { describe, expect, it, vi } from 'vitest';

import { signDevToken } from '../../local/dev-token';
import { DomainError } from '../../shared/domain/errors';
import { TokenVerifier } from '../../shared/http/auth';

const settings = { issuer: 'https://issuer.test/', audience: 'api://customer-sync', channelClaim: 'channel' };
const secret = 'a-test-secret-of-sufficient-length';
const claims = { iss: settings.issuer, aud: settings.audience, roles: ['Channel'], channel: 'web' };

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'ok',
    (e: unknown) => (e instanceof DomainError ? `${e.code}: ${e.message}` : String(e)),
  );

describe('bearer tokens', () => {
  const dev = new TokenVerifier({ ...settings, devSecret: secret });

  it('accepts a local development token and reads roles and channel', async () => {
    const principal = await dev.verify(`Bearer ${signDevToken(secret, claims)}`);
    expect(principal).toMatchObject({ roles: ['Channel'], channel: 'web' });
  });

  it.each([
    ['no header', undefined, /UNAUTHENTICATED/],
    ['not a JWT', 'Bearer abc', /not a JWT/],
    ['wrong secret', `Bearer ${signDevToken('another-secret-of-enough-length', claims)}`, /signature/],
    ['wrong audience', `Bearer ${signDevToken(secret, { ...claims, aud: 'api://other' })}`, /audience/],
    ['wrong issuer', `Bearer ${signDevToken(secret, { ...claims, iss: 'https://evil/' })}`, /issuer/],
    ['expired', `Bearer ${signDevToken(secret, claims, -3600)}`, /expired/],
  ])('refuses %s', async (_, header, expected) => {
    expect(await codeOf(dev.verify(header))).toMatch(expected);
  });

  it('refuses HS256 tokens when no development secret is configured (production)', async () => {
    const production = new TokenVerifier({ ...settings, jwks: '{"keys":[]}' });
    expect(await codeOf(production.verify(`Bearer ${signDevToken(secret, claims)}`))).toMatch(/HS256/);
  });

  it('validates RS256 tokens against the configured signing keys', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig' };
    const verifier = new TokenVerifier({ ...settings, jwks: JSON.stringify({ keys: [jwk] }) });
    const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const body = `${encode({ alg: 'RS256', kid: 'k1' })}.${encode({ ...claims, roles: ['Sync.Reader'], exp: now + 60 })}`;
    const token = `${body}.${sign('RSA-SHA256', Buffer.from(body), privateKey).toString('base64url')}`;
    expect(await verifier.verify(`Bearer ${token}`)).toMatchObject({ roles: ['Sync.Reader'] });
    const tampered = `${encode({ alg: 'RS256', kid: 'k1' })}.${encode({ ...claims, roles: ['Sync.Operator'], exp: now + 60 })}.${token.split('.')[2]}`;
    expect(await codeOf(verifier.verify(`Bearer ${tampered}`))).toMatch(/signature/);
  });
});

describe('bearer tokens: claims and signing keys', () => {
  const dev = new TokenVerifier({ ...settings, devSecret: secret });
  const unsigned = (payload: object) => {
    const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const body = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode(payload)}`;
    return `Bearer ${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
  };
  const now = Math.floor(Date.now() / 1000);

  it('requires an expiry and honours not-before, with a minute of clock skew', async () => {
    expect(await codeOf(dev.verify(unsigned(claims)))).toMatch(/UNAUTHENTICATED: .*"exp"/);
    expect(await codeOf(dev.verify(unsigned({ ...claims, exp: now + 60, nbf: now + 600 })))).toMatch(/not valid yet/);
    expect(await codeOf(dev.verify(unsigned({ ...claims, exp: now + 60, nbf: now + 30 })))).toBe('ok');
    expect(await codeOf(dev.verify(unsigned({ ...claims, exp: now - 30 })))).toBe('ok');
  });

  it('serves a token verified once while it is valid, and refuses it once it has expired', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const verifier = new TokenVerifier({ ...settings, devSecret: secret });
      const start = Date.now();
      const token = unsigned({ ...claims, exp: Math.floor(start / 1000) + 120, nbf: Math.floor(start / 1000) });
      expect(await verifier.verify(token)).toMatchObject({ roles: ['Channel'], channel: 'web' });
      const sameToken = await verifier.verify(token); // served as verified
      expect(sameToken).toMatchObject({ roles: ['Channel'], channel: 'web' });
      // Another token with the same claims but a forged signature is checked, not served.
      expect(await codeOf(verifier.verify(`${token.slice(0, -4)}AAAA`))).toMatch(/signature/);
      vi.setSystemTime(start + 120_000 + 59_000); // within the minute of clock skew
      expect(await codeOf(verifier.verify(token))).toBe('ok');
      vi.setSystemTime(start + 120_000 + 61_000);
      expect(await codeOf(verifier.verify(token))).toMatch(/expired/);
    } finally {
      vi.useRealTimers();
    }
  });

  it('answers 503, not 401 or a hang, when the signing keys cannot be fetched', async () => {
    const server = createServer(() => undefined); // accepts and never answers
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const token = await new SignJWT({ ...claims, roles: ['Sync.Reader'] })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setExpirationTime('1m')
      .sign(privateKey);
    try {
      for (const jwksUri of [`http://127.0.0.1:${port}/keys`, 'http://127.0.0.1:1/keys']) {
        const verifier = new TokenVerifier({ ...settings, jwksUri, jwksTimeoutMs: 300 });
        const started = Date.now();
        expect(await codeOf(verifier.verify(`Bearer ${token}`))).toMatch(/^SERVICE_UNAVAILABLE: /);
        expect(Date.now() - started).toBeLessThan(2000);
      }
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
