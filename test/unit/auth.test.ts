import { generateKeyPairSync, sign } from 'node:crypto';

import { describe, expect, it } from 'vitest';

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
