import type { z } from 'zod';

import { services } from '../app';
import { DomainError } from '../domain/errors';
import { RESERVED_CHANNELS } from '../domain/operation';
import type { SyncContext } from '../operations/context';
import { inSpan, requestContext, SpanKind, SpanStatusCode } from '../telemetry/tracing';
import { isChannelOnly, type Principal, requireChannel, requireRole, type Role } from './auth';
import { type HttpResult, problem, problemOf } from './problem';
import { type HttpRequestLike, readHeaders, readJson, readQuery, validate } from './request';

/**
 * An HTTP endpoint described once: route, method, who may call it, the schemas of its path parameters,
 * headers, query and body, and its responses. The description drives the function's registration (its
 * `trigger`), the request checks below, the OpenAPI document (shared/http/openapi.ts) and the authorization
 * matrix test, so an endpoint is documented and covered by being written. A function file holds one.
 */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** No token, or a bearer token with one of these roles. */
export type Access = 'anonymous' | readonly Role[];
export const READERS = ['Sync.Reader', 'Sync.Operator'] as const satisfies Role[];
export const OPERATORS = ['Sync.Operator'] as const satisfies Role[];
export const CHANNELS = ['Channel'] as const satisfies Role[];

export interface RequestSchemas {
  params?: z.ZodObject;
  headers?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
}

export interface ResponseSpec {
  description: string;
  /** The JSON body; none for an empty answer. */
  schema?: z.ZodType;
  /** Also answers text/csv when the client accepts it. */
  csv?: boolean;
}

type Parsed<S> = S extends z.ZodType ? z.infer<S> : undefined;

export interface Call<R extends RequestSchemas, A extends Access> {
  request: HttpRequestLike;
  /** The use cases' context; an endpoint open to anyone (health, this document) answers without storage. */
  ctx: A extends 'anonymous' ? undefined : SyncContext;
  principal: A extends 'anonymous' ? undefined : Principal;
  params: Parsed<R['params']>;
  headers: Parsed<R['headers']>;
  query: Parsed<R['query']>;
  body: Parsed<R['body']>;
}

export interface EndpointSpec<R extends RequestSchemas = RequestSchemas, A extends Access = Access> {
  /** The function's name: `<resource>-<verb>`, as its file is named. */
  name: string;
  method: HttpMethod;
  /** Below the route prefix (host.json), with `{name}` for path parameters. */
  route: string;
  summary: string;
  access: A;
  request: R;
  responses: Record<number, ResponseSpec>;
  /**
   * Problem statuses the handler itself may answer. Those of the checks here are added to the document by
   * themselves: 400 for a schema that can refuse, 401 and 403 with a token, 413 and 415 with a body, 428 with If-Match.
   */
  problems?: number[];
  handle(call: Call<R, A>): Promise<HttpResult>;
}

/** The Functions invocation context, as far as an endpoint uses it. */
export interface Logger {
  error(...args: unknown[]): void;
  /** The host's trace context of this invocation (W3C), which a request's span continues. */
  traceContext?: { traceParent?: string | null; traceState?: string | null };
}

export interface Endpoint extends EndpointSpec {
  /** What `app.http(name, trigger)` registers. */
  trigger: {
    methods: HttpMethod[];
    route: string;
    authLevel: 'anonymous';
    handler(request: HttpRequestLike, log: Logger): Promise<HttpResult>;
  };
}

/** Every endpoint described in this process, in the order their function files were loaded. */
export const endpoints: Endpoint[] = [];

/**
 * Describes an endpoint and records it. Its handler checks, in this order: the token (401), the role (403), the
 * path parameters (400), the channel — a `{channelId}` in the route must be the token's own (403) —, the
 * headers (428 for a missing If-Match, else 400), the query (400) and the body (415, 413, 400); then it opens
 * the use cases' context and runs `handle`, and maps every error to a problem response.
 */
export function endpoint<R extends RequestSchemas, A extends Access>(spec: EndpointSpec<R, A>): Endpoint {
  const described: Endpoint = {
    ...(spec as unknown as EndpointSpec),
    trigger: {
      methods: [spec.method],
      route: spec.route,
      authLevel: 'anonymous', // the handler checks the bearer token itself
      handler: (request, log) =>
        served(spec, request, log, () => answer(log, async () => spec.handle(await parse(spec, request)))),
    },
  };
  endpoints.push(described);
  return described;
}

async function parse<R extends RequestSchemas, A extends Access>(
  spec: EndpointSpec<R, A>,
  request: HttpRequestLike,
): Promise<Call<R, A>> {
  const { verifier, context } = services();
  const { params, headers, query, body } = spec.request;
  let principal: Principal | undefined;
  if (spec.access !== 'anonymous') {
    principal = await verifier.verify(request.headers.get('authorization'));
    requireRole(principal, spec.access);
    if (isChannelOnly(principal)) {
      if (principal.channel === undefined) throw new DomainError('FORBIDDEN', 'This Channel token names no channel.');
      // The service submits as hq (operators' deletions) and crm (the CRM sync): a channel token named so would
      // read their operations as its own.
      if (RESERVED_CHANNELS.includes(principal.channel.toLowerCase())) {
        throw new DomainError(
          'FORBIDDEN',
          `Channel '${principal.channel}' is reserved for the service's own operations.`,
        );
      }
    }
  }
  const parsedParams = params && validate(params, { ...request.params }, 'Invalid path parameters.');
  const channelId = (parsedParams as { channelId?: unknown } | undefined)?.channelId;
  if (principal && typeof channelId === 'string') requireChannel(principal, channelId);
  if (headers && requiresIfMatch(headers) && !request.headers.get('if-match')) {
    throw new DomainError('PRECONDITION_REQUIRED', 'Send If-Match with the ETag of the version you read.');
  }
  const parsedHeaders = headers && readHeaders(request, headers);
  const parsedQuery = query && readQuery(request, query);
  const parsedBody = body && (await readJson(request, body));
  return {
    request,
    // Storage is reached only for a request that passed every check.
    ctx: (principal && (await context())) as Call<R, A>['ctx'],
    principal: principal as Call<R, A>['principal'],
    params: parsedParams as Parsed<R['params']>,
    headers: parsedHeaders as Parsed<R['headers']>,
    query: parsedQuery as Parsed<R['query']>,
    body: parsedBody as Parsed<R['body']>,
  };
}

/**
 * A request is a server span named by its route (`POST /api/channels/{channelId}/customers`), continuing the
 * invocation's trace context (the host's, from the caller's `traceparent`), so Application Insights lists it as the
 * request with the submit, the doorbell and its processing below it. A 5xx marks it failed; a 4xx is the caller's.
 */
function served(
  spec: EndpointSpec,
  request: HttpRequestLike,
  invocation: Logger,
  run: () => Promise<HttpResult>,
): Promise<HttpResult> {
  const route = `/api/${spec.route}`;
  const attributes = { 'http.request.method': spec.method, 'http.route': route };
  const parent = requestContext(request.headers, invocation);
  return inSpan(`${spec.method} ${route}`, { kind: SpanKind.SERVER, attributes, parent }, async (span) => {
    const result = await run();
    if (span.isRecording()) {
      span.setAttributes({ 'http.response.status_code': result.status, 'url.path': new URL(request.url).pathname });
      if (result.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    }
    return result;
  });
}

/** A conditional request (RFC 6585): without If-Match it is refused with 428, not as an invalid header. */
export const requiresIfMatch = (headers: z.ZodObject) =>
  headers.shape['if-match'] !== undefined && !headers.shape['if-match'].safeParse(undefined).success;

/** Runs a handler and maps every error to a problem response; nothing but a DomainError's own words leaks. */
async function answer(log: Logger, run: () => Promise<HttpResult>): Promise<HttpResult> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof DomainError) return problemOf(error);
    log.error(error);
    if (isUnavailable(error)) {
      return problemOf(
        new DomainError('SERVICE_UNAVAILABLE', 'Storage or the message broker is not reachable; try again shortly.'),
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
