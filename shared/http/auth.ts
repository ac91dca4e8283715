import { createSecretKey } from 'node:crypto';

import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from 'jose';

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
  /** How long a signing-key fetch may take (default 5 s). */
  jwksTimeoutMs?: number;
}

/** A signing-key fetch that takes longer fails (a 503 for the caller), rather than holding the request. */
const JWKS_TIMEOUT_MS = 5000;
/** Keys are fetched again after this long (Entra ID rotates them), or earlier for an unknown key id... */
const JWKS_MAX_AGE_MS = 5 * 60_000;
/** ...but at most this often, so tokens with made-up key ids cannot make every request fetch. */
const JWKS_COOLDOWN_MS = 10_000;
const CLOCK_SKEW_S = 60;
/**
 * A token verified once is taken as verified while it is valid, for at most this long (a key withdrawn from the
 * key set stops counting within the time the key set itself is kept), and for at most this many tokens.
 */
const VERIFIED_MAX_AGE_MS = JWKS_MAX_AGE_MS;
const VERIFIED_MAX_TOKENS = 1000;

/**
 * Validates bearer tokens with `jose`: RS256 against the configured signing keys (Entra ID's JWKS), or HS256
 * with the local development secret when one is configured; no other algorithm. Checks signature, issuer,
 * audience, expiry (required) and not-before. A bad token is a 401 that says why; signing keys that cannot be
 * fetched are a 503, since the caller's token may well be good.
 *
 * A channel sends the same token with every request for its lifetime (an hour from Entra ID), and checking a
 * signature is a good part of the CPU a submit costs, so a verified token's principal is kept and served while
 * the token is valid (expiry and not-before are checked again on every use, with the same clock skew).
 */
export class TokenVerifier {
  private readonly algorithms: string[];
  private readonly keys: JWTVerifyGetKey;
  /** Verified tokens → their principal and the window (epoch ms) in which it may be served; oldest first. */
  private readonly verified = new Map<string, { principal: Principal; from: number; until: number }>();

  constructor(private readonly settings: AuthSettings) {
    const jwks = settings.jwksUri
      ? createRemoteJWKSet(new URL(settings.jwksUri), {
          timeoutDuration: settings.jwksTimeoutMs ?? JWKS_TIMEOUT_MS,
          cacheMaxAge: JWKS_MAX_AGE_MS,
          cooldownDuration: JWKS_COOLDOWN_MS,
        })
      : createLocalJWKSet(JSON.parse(settings.jwks ?? '{"keys":[]}') as Parameters<typeof createLocalJWKSet>[0]);
    // A key object rather than bytes: jose converts it once and keeps it, instead of on every token.
    const secret = settings.devSecret && createSecretKey(Buffer.from(settings.devSecret));
    this.algorithms = secret ? ['RS256', 'HS256'] : ['RS256'];
    this.keys = async (header) => {
      if (header.alg === 'HS256' && secret) return secret;
      try {
        return await jwks(header);
      } catch (error) {
        if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
        // Timed out, unreachable, or not a key set: nothing the caller did wrong.
        throw new DomainError('SERVICE_UNAVAILABLE', 'The token signing keys could not be fetched; try again shortly.');
      }
    };
  }

  async verify(authorization: string | null | undefined): Promise<Principal> {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) throw unauthenticated('Send Authorization: Bearer <token>.');
    const now = Date.now();
    const known = this.verified.get(token);
    if (known && now >= known.from && now < known.until) return known.principal;
    this.verified.delete(token); // outside its window: verified afresh, which says why it is refused
    const entry = await this.verifyToken(token);
    if (this.verified.size >= VERIFIED_MAX_TOKENS) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, entry);
    return entry.principal;
  }

  private async verifyToken(token: string): Promise<{ principal: Principal; from: number; until: number }> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        algorithms: this.algorithms,
        clockTolerance: CLOCK_SKEW_S,
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      if (error instanceof DomainError) throw error;
      throw unauthenticated(reasonOf(error, token));
    }
    const roles = (Array.isArray(payload.roles) ? payload.roles : []).filter((r): r is Role =>
      (ROLES as readonly unknown[]).includes(r),
    );
    const channel = payload[this.settings.channelClaim];
    const skew = CLOCK_SKEW_S * 1000;
    return {
      principal: {
        subject: String(payload.sub ?? payload.oid ?? 'unknown'),
        roles,
        ...(typeof channel === 'string' ? { channel } : {}),
      },
      from: payload.nbf === undefined ? 0 : payload.nbf * 1000 - skew,
      until: Math.min(payload.exp! * 1000 + skew, Date.now() + VERIFIED_MAX_AGE_MS),
    };
  }
}

/** What was wrong with a token, in words a client developer can act on. */
function reasonOf(error: unknown, token: string): string {
  if (error instanceof errors.JWTExpired) return 'The token has expired.';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'iss') return 'The token has the wrong issuer.';
    if (error.claim === 'aud') return 'The token has the wrong audience.';
    if (error.claim === 'nbf') return 'The token is not valid yet.';
    return `The token's "${error.claim}" claim is not valid (${error.reason}).`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return `Tokens signed with '${String(decodeProtectedHeader(token).alg)}' are not accepted.`;
  }
  if (error instanceof errors.JWSSignatureVerificationFailed || error instanceof errors.JWKSNoMatchingKey) {
    return 'The token signature is invalid.';
  }
  return 'The bearer token is not a JWT.';
}

const unauthenticated = (detail: string) => new DomainError('UNAUTHENTICATED', detail);

export function requireRole(principal: Principal, allowed: readonly Role[]): void {
  if (!principal.roles.some((r) => allowed.includes(r))) {
    throw new DomainError('FORBIDDEN', `This needs one of the roles: ${allowed.join(', ')}.`);
  }
}

/** A principal whose only role is Channel: it may see its own channel's data and nothing else. */
export const isChannelOnly = (principal: Principal) => principal.roles.every((r) => r === 'Channel');

export function requireChannel(principal: Principal, channel: string): void {
  requireRole(principal, ['Channel']);
  if (principal.channel !== channel) {
    throw new DomainError(
      'FORBIDDEN',
      `This token belongs to channel '${principal.channel ?? '(none)'}', not '${channel}'.`,
    );
  }
}
