import { type Services, services } from '../app';
import { DomainError } from '../domain/errors';
import type { SyncContext } from '../operations/context';
import type { Principal } from './auth';
import { type HttpResult, problem, problemOf } from './problem';
import type { HttpRequestLike } from './request';

export interface Call {
  request: HttpRequestLike;
  principal: Principal;
  ctx: SyncContext;
}

interface Logger {
  error(...args: unknown[]): void;
}

type Handler<C> = (call: C) => Promise<HttpResult>;

/** Wraps an authenticated endpoint: verifies the bearer token, runs the handler, maps every error. */
export function authenticated(handle: Handler<Call>) {
  return (request: HttpRequestLike, log: Logger) =>
    guarded(log, async ({ ctx, verifier }) => {
      const principal = await verifier.verify(request.headers.get('authorization'));
      return handle({ request, principal, ctx });
    });
}

export function anonymous(handle: Handler<{ request: HttpRequestLike; ctx: SyncContext }>) {
  return (request: HttpRequestLike, log: Logger) => guarded(log, ({ ctx }) => handle({ request, ctx }));
}

async function guarded(log: Logger, run: (s: Services) => Promise<HttpResult>): Promise<HttpResult> {
  try {
    return await run(services());
  } catch (error) {
    if (error instanceof DomainError) {
      return problemOf(error, error.code === 'UNAUTHENTICATED' ? { 'WWW-Authenticate': 'Bearer' } : undefined);
    }
    log.error(error);
    if (isUnavailable(error)) {
      return problem(
        'SERVICE_UNAVAILABLE',
        'Storage or the message broker is not reachable; try again shortly.',
        undefined,
        {
          'Retry-After': '5',
        },
      );
    }
    return problem('INTERNAL_ERROR', 'An unexpected error occurred. It has been logged.');
  }
}

/** Storage answering 5xx, or a dependency that cannot be reached: the client may retry. */
function isUnavailable(error: unknown): boolean {
  const e = error as { statusCode?: number; code?: string } | undefined;
  return (
    (e?.statusCode !== undefined && e.statusCode >= 500) ||
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT'].includes(e?.code ?? '')
  );
}

export const json = (status: number, body: unknown, headers?: Record<string, string>): HttpResult => ({
  status,
  jsonBody: body,
  ...(headers ? { headers } : {}),
});
