/**
 * The HTTP side of the development Dataverse, on plain node:http: reading bodies within a limit, the order in
 * which a request meets the fault switches, the rate limit and the bearer check before the Web API sees it, and
 * the test-only endpoints under /_dev/. Kept apart from api.ts so the Web API logic never deals with sockets.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

import type { ApiResponse, WebApi } from './api';
import { DataverseError, errors } from './errors';
import { applyFaultRequest, type FaultSwitches, type RateLimiter, type RequestStats } from './faults';
import { TABLES } from './store';

export const API_PATH = '/api/data/v9.2/';
/** Larger bodies get 413; the service writes one customer's columns at a time, a few hundred bytes. */
export const BODY_LIMIT_BYTES = 1024 * 1024;
const JSON_TYPE = 'application/json; odata.metadata=minimal';

export interface ServerParts {
  api: WebApi;
  faults: FaultSwitches;
  stats: RequestStats;
  limiter?: RateLimiter;
  log: (line: string) => void;
}

/** The server, and an abort for answers still waiting out a delayNext when it closes. */
export function createDataverseServer(parts: ServerParts): { server: Server; abortDelays(): void } {
  const delays = new AbortController();
  const server = createServer((request, response) => {
    handle(parts, request, response, delays.signal).catch((error: unknown) => {
      parts.log(`error answering ${request.method} ${request.url}: ${describe(error)}`);
      if (!response.headersSent) reply(response, errorAnswer(errors.internal()));
      else response.destroy();
    });
  });
  // dynamics-web-api's keep-alive agent never retires an idle socket itself, so whenever the server closes one the
  // client may be just reusing it: an occasional "socket hang up". Node's 5 s makes that frequent; Dataverse's
  // front end keeps idle connections for minutes, and so does this server.
  server.keepAliveTimeout = 65_000;
  return { server, abortDelays: () => delays.abort() };
}

async function handle(parts: ServerParts, request: IncomingMessage, response: ServerResponse, delays: AbortSignal) {
  const { api, faults, stats, limiter } = parts;
  const method = request.method ?? 'GET';
  const url = new URL(request.url ?? '/', 'http://localhost');
  // The body is read first in every case, so an early answer never races a client that is still sending.
  const body = await readBody(request);

  if (url.pathname.startsWith('/_dev/')) return devEndpoint(parts, method, url.pathname, body, response);

  const inApi = url.pathname.startsWith(API_PATH) || url.pathname === API_PATH.slice(0, -1);
  const path = inApi ? decodePath(url.pathname.slice(API_PATH.length)) : undefined;
  const segment = path === undefined ? undefined : /^[^/(]*/.exec(path)![0];
  const table = segment !== undefined && segment in TABLES ? segment : undefined;
  stats.count(method, table ?? 'other');

  // Injected faults answer before anything else is looked at, as a failing or throttling front end would.
  const fail = faults.take('fail', method, table);
  if (fail) {
    stats.note('failed');
    return reply(response, errorAnswer(errors.injected(fail.status)));
  }
  const throttle = faults.take('throttle', method, table);
  if (throttle) {
    stats.note('throttled');
    const { maxRequests, windowMs } = limiter?.limit ?? { maxRequests: 6000, windowMs: 300_000 };
    return reply(response, errorAnswer(errors.throttled(throttle.retryAfterSeconds, maxRequests, windowMs)));
  }
  if (limiter) {
    const admission = limiter.admit(Date.now());
    if (!admission.admitted) {
      stats.note('throttled');
      const { maxRequests, windowMs } = limiter.limit;
      return reply(response, errorAnswer(errors.throttled(admission.retryAfterSeconds, maxRequests, windowMs)));
    }
  }
  const authorized = /^Bearer\s+\S/i.test(request.headers.authorization ?? '');
  if (!authorized) return reply(response, errorAnswer(errors.unauthorized()));
  if (body === undefined) return reply(response, errorAnswer(errors.tooLarge(BODY_LIMIT_BYTES)));
  if (path === undefined) return reply(response, errorAnswer(errors.unknownSegment(url.pathname)));

  let answer: ApiResponse;
  try {
    answer = api.handle({
      method,
      path,
      search: url.searchParams,
      headers: request.headers,
      body,
      baseUrl: `http://${request.headers.host ?? 'localhost'}${API_PATH}`,
    });
  } catch (error) {
    if (!(error instanceof DataverseError)) throw error;
    answer = errorAnswer(error);
  }

  const delay = faults.take('delay', method, table);
  if (delay) await sleep(delay.ms, undefined, { signal: delays }).catch(() => undefined);
  if (answer.wrote && faults.take('drop', method, table)) {
    stats.note('dropped');
    request.socket.destroy();
    return;
  }
  reply(response, answer);
}

function devEndpoint(
  parts: ServerParts,
  method: string,
  path: string,
  body: string | undefined,
  response: ServerResponse,
) {
  const devError = (status: number, message: string) =>
    reply(response, { status, headers: {}, body: { error: { code: '', message } }, wrote: false });
  if (path === '/_dev/faults' && method === 'POST') {
    if (body === undefined) return devError(413, 'body too large');
    try {
      applyFaultRequest(parts.faults, JSON.parse(body || '{}'));
    } catch (error) {
      return devError(400, describe(error));
    }
    return reply(response, { status: 204, headers: {}, wrote: false });
  }
  if (path === '/_dev/stats' && method === 'GET') {
    return reply(response, { status: 200, headers: {}, body: parts.stats.snapshot(), wrote: false });
  }
  if (path === '/_dev/stats' && method === 'DELETE') {
    parts.stats.reset();
    return reply(response, { status: 204, headers: {}, wrote: false });
  }
  return devError(404, `no ${method} ${path}; there are POST /_dev/faults, GET and DELETE /_dev/stats`);
}

/** The body as text, or undefined when it is over the limit (the rest is read and dropped). */
function readBody(request: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= BODY_LIMIT_BYTES) chunks.push(chunk);
    });
    request.once('end', () => resolve(size > BODY_LIMIT_BYTES ? undefined : Buffer.concat(chunks).toString('utf8')));
    request.once('error', reject);
  });
}

function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

const errorAnswer = (error: DataverseError): ApiResponse => ({
  status: error.status,
  headers: error.headers,
  body: error.body(),
  wrote: false,
});

function reply(response: ServerResponse, answer: ApiResponse): void {
  const payload = answer.body === undefined ? undefined : JSON.stringify(answer.body);
  response.writeHead(answer.status, {
    'OData-Version': '4.0',
    ...(payload === undefined ? {} : { 'Content-Type': JSON_TYPE, 'Content-Length': Buffer.byteLength(payload) }),
    ...answer.headers,
  });
  response.end(payload);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
