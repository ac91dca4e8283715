import { createHmac, createPublicKey, type JsonWebKey, type KeyObject, timingSafeEqual, verify } from 'node:crypto';

import { DomainError } from '../domain/errors';

export const ROLES = ['Channel', 'Sync.Reader', 'Sync.Operator'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  subject: string;
  roles: Role[];
  /** The channel a Channel token is bound to. */
  channel?: string;
}

export interface AuthSettings {
  issuer: string;
  audience: string;
  /** Microsoft Entra ID: https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys */
  jwksUri?: string;
  /** The same key set inline (JSON), for air-gapped deployments and tests. */
  jwks?: string;
  /** Local development only: accept HS256 tokens signed with this secret (`npm run token`). */
  devSecret?: string;
  channelClaim: string;
}

const CLOCK_SKEW_S = 60;
const JWKS_REFRESH_MS = 5 * 60_000;

/**
 * Validates bearer tokens: RS256 against the configured signing keys (Entra ID's JWKS), or HS256 with the
 * local development secret when one is configured. Checks issuer, audience, expiry and not-before.
 * Implemented on node:crypto to keep the dependency surface small; every failure is a 401 with the reason.
 */
export class TokenVerifier {
  private keys = new Map<string, KeyObject>();
  private fetchedAt = 0;

  constructor(
    private readonly settings: AuthSettings,
    private readonly now: () => Date = () => new Date(),
  ) {
    if (settings.jwks) this.loadKeys(settings.jwks);
  }

  async verify(authorization: string | null | undefined): Promise<Principal> {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) throw unauthenticated('Send Authorization: Bearer <token>.');
    const parts = token.split('.');
    if (parts.length !== 3) throw unauthenticated('The bearer token is not a JWT.');
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
    const header = decodeJson(headerPart);
    const payload = decodeJson(payloadPart);
    const signed = Buffer.from(`${headerPart}.${payloadPart}`);
    const signature = Buffer.from(signaturePart, 'base64url');

    if (header.alg === 'RS256' && typeof header.kid === 'string') {
      const key = await this.key(header.kid);
      if (!key || !verify('RSA-SHA256', signed, key, signature))
        throw unauthenticated('The token signature is invalid.');
    } else if (header.alg === 'HS256' && this.settings.devSecret) {
      const expected = createHmac('sha256', this.settings.devSecret).update(signed).digest();
      if (expected.length !== signature.length || !timingSafeEqual(expected, signature)) {
        throw unauthenticated('The token signature is invalid.');
      }
    } else {
      throw unauthenticated(`Tokens signed with '${String(header.alg)}' are not accepted.`);
    }

    const nowS = Math.floor(this.now().getTime() / 1000);
    if (payload.iss !== this.settings.issuer) throw unauthenticated('The token has the wrong issuer.');
    const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if (!audiences.includes(this.settings.audience)) throw unauthenticated('The token has the wrong audience.');
    if (typeof payload.exp !== 'number' || payload.exp + CLOCK_SKEW_S < nowS)
      throw unauthenticated('The token has expired.');
    if (typeof payload.nbf === 'number' && payload.nbf - CLOCK_SKEW_S > nowS)
      throw unauthenticated('The token is not valid yet.');

    const roles = (Array.isArray(payload.roles) ? payload.roles : []).filter((r): r is Role =>
      (ROLES as readonly unknown[]).includes(r),
    );
    const channel = payload[this.settings.channelClaim];
    return {
      subject: String(payload.sub ?? payload.oid ?? 'unknown'),
      roles,
      ...(typeof channel === 'string' ? { channel } : {}),
    };
  }

  private async key(kid: string): Promise<KeyObject | undefined> {
    const age = Date.now() - this.fetchedAt;
    // Refresh periodically, and early for an unknown kid (keys rotate), but at most every 10 seconds.
    if (this.settings.jwksUri && (age > JWKS_REFRESH_MS || (!this.keys.has(kid) && age > 10_000))) {
      this.fetchedAt = Date.now();
      const response = await fetch(this.settings.jwksUri);
      if (response.ok) this.loadKeys(await response.text());
    }
    return this.keys.get(kid);
  }

  private loadKeys(json: string): void {
    const set = JSON.parse(json) as { keys?: (JsonWebKey & { kid?: string })[] };
    const keys = new Map<string, KeyObject>();
    for (const jwk of set.keys ?? []) {
      if (jwk.kty === 'RSA' && jwk.kid) keys.set(jwk.kid, createPublicKey({ key: jwk, format: 'jwk' }));
    }
    this.keys = keys;
  }
}

function decodeJson(part: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw unauthenticated('The bearer token is not a JWT.');
}

const unauthenticated = (detail: string) => new DomainError('UNAUTHENTICATED', detail);

export function requireRole(principal: Principal, ...allowed: Role[]): void {
  if (!principal.roles.some((r) => allowed.includes(r))) {
    throw new DomainError('FORBIDDEN', `This needs one of the roles: ${allowed.join(', ')}.`);
  }
}

/** A principal whose only role is Channel: it may see its own channel's data and nothing else. */
export const isChannelOnly = (principal: Principal) => principal.roles.every((r) => r === 'Channel');

export function requireChannel(principal: Principal, channel: string): void {
  requireRole(principal, 'Channel');
  if (principal.channel !== channel) {
    throw new DomainError(
      'FORBIDDEN',
      `This token belongs to channel '${principal.channel ?? '(none)'}', not '${channel}'.`,
    );
  }
}

/** Signs an HS256 token for the local stack (`npm run token`) and tests. Never used in production code paths. */
export function signDevToken(
  secret: string,
  claims: { iss: string; aud: string; roles: string[]; sub?: string; [claim: string]: unknown },
  ttlSeconds = 8 * 3600,
): string {
  const nowS = Math.floor(Date.now() / 1000);
  const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const body = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({ sub: 'local-developer', iat: nowS, nbf: nowS, exp: nowS + ttlSeconds, ...claims })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}
