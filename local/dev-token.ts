import { createHmac } from 'node:crypto';

/**
 * Signs an HS256 token that the local stack accepts (AUTH_DEV_SECRET), for `npm run token`, the tests and the
 * benchmark; shipped code only verifies tokens. Signed here with node:crypto rather than jose's SignJWT
 * because callers (test helpers among them) need it synchronously.
 */
export function signDevToken(
  secret: string,
  claims: { iss: string; aud: string; roles: string[]; sub?: string; [claim: string]: unknown },
  ttlSeconds = 8 * 3600,
): string {
  const nowS = Math.floor(Date.now() / 1000);
  const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const header = encode({ alg: 'HS256', typ: 'JWT' });
  const payload = encode({ sub: 'local-developer', iat: nowS, nbf: nowS, exp: nowS + ttlSeconds, ...claims });
  return `${header}.${payload}.${createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url')}`;
}
