// HTTP triggers. Requests become RPC-shaped `http` typed data, as the host sends them to the worker,
// and the library's RPC response is written back. When the app enables HTTP streaming
// (`app.setup({ enableHttpStream: true })`) the library instead serves the invocation from its own
// proxy server, which this host forwards to and pipes back, so streamed bodies are never buffered.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import type {
  HttpCookie,
  HttpData,
  InvocationRequest,
  InvocationResponse,
  RegisteredFunction,
  TypedData,
} from './core';
import type { ResultObserver, Tracker } from './invoke';
import type { Router } from './routes';

export interface HttpFunction {
  readonly fn: RegisteredFunction;
  /** Upper-case methods, or null for all. */
  readonly methods: ReadonlySet<string> | null;
  /** The http output binding the response comes from (`$return` unless the app named one). */
  readonly outputName: string | undefined;
}

export interface HttpServerOptions {
  router: Router<HttpFunction>;
  /** Invokes and logs failures; rejects when the function failed. */
  invoke(fn: RegisteredFunction, request: InvocationRequest, observe?: ResultObserver): Promise<InvocationResponse>;
  tracker: Tracker;
  /** The library's streaming proxy (`HttpUri` capability), if the app enabled HTTP streaming. */
  streamUri: URL | undefined;
  onError(message: string): void;
  /** True once shutdown began: requests still arriving on kept-alive connections are turned away. */
  isClosing(): boolean;
}

// The host's default request size limit (100 MB); anything larger is refused before buffering it.
const maxBodyBytes = 100 * 1024 * 1024;
const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te']);

function sendEmpty(res: http.ServerResponse, status: number): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-length': '0' });
  res.end();
}

function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  const length = req.headers['content-length'];
  if ((length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined) {
    return Promise.resolve(undefined);
  }
  if (length !== undefined && Number(length) > maxBodyBytes) return Promise.reject(new RangeError('body too large'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) req.destroy(new RangeError('body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)));
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new Error('request aborted'));
    });
  });
}

// randomUUID draws from a pooled entropy buffer, unlike randomBytes, which costs a syscall per request.
function newTraceParent(): string {
  return `00-${randomUUID().replace(/-/g, '')}-${randomUUID().replace(/-/g, '').slice(0, 16)}-01`;
}

function flattenHeaders(req: http.IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

// Repeated query keys are joined with commas, as the host does (and `request.query` then shows).
function queryMap(search: string): Record<string, string> {
  const query: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(search)) {
    const existing = query[key];
    query[key] = existing === undefined ? value : `${existing},${value}`;
  }
  return query;
}

function serializeCookie(c: HttpCookie): string {
  let cookie = `${c.name ?? ''}=${encodeURIComponent(c.value ?? '')}`;
  if (c.domain?.value) cookie += `; Domain=${c.domain.value}`;
  if (c.path?.value) cookie += `; Path=${c.path.value}`;
  const expires = c.expires?.value?.seconds;
  if (typeof expires === 'number') cookie += `; Expires=${new Date(expires * 1000).toUTCString()}`;
  if (typeof c.maxAge?.value === 'number') cookie += `; Max-Age=${Math.trunc(c.maxAge.value)}`;
  if (c.secure?.value) cookie += '; Secure';
  if (c.httpOnly?.value) cookie += '; HttpOnly';
  // 'none' means unspecified; 'explicitNone' is the SameSite=None attribute.
  if (c.sameSite === 'lax') cookie += '; SameSite=Lax';
  else if (c.sameSite === 'strict') cookie += '; SameSite=Strict';
  else if (c.sameSite === 'explicitNone') cookie += '; SameSite=None';
  return cookie;
}

function bodyBytes(body: TypedData | null | undefined): Buffer {
  if (!body) return Buffer.alloc(0);
  if (body.bytes) return Buffer.from(body.bytes.buffer, body.bytes.byteOffset, body.bytes.byteLength);
  if (typeof body.string === 'string') return Buffer.from(body.string);
  if (typeof body.json === 'string') return Buffer.from(body.json);
  return Buffer.alloc(0);
}

function httpOutput(response: InvocationResponse, outputName: string | undefined): HttpData | null | undefined {
  if (outputName === '$return' || outputName === undefined) return response.returnValue?.http;
  return response.outputData?.find((o) => o.name === outputName)?.data?.http;
}

function writeResponse(res: http.ServerResponse, data: HttpData | null | undefined): void {
  // Like the host: a function that sets no response yields an empty 200.
  if (!data) return sendEmpty(res, 200);
  const status = Number(data.statusCode ?? 200);
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(data.headers ?? {})) {
    if (!hopByHop.has(name.toLowerCase())) headers[name] = value;
  }
  if (data.cookies?.length) {
    const existing = headers['set-cookie'];
    headers['set-cookie'] = [
      ...(existing === undefined ? [] : [String(existing)]),
      ...data.cookies.map(serializeCookie),
    ];
  }
  const body = bodyBytes(data.body);
  const bodyless = status === 204 || status === 304 || (status >= 100 && status < 200);
  if (!bodyless) headers['content-length'] = body.length;
  res.writeHead(Number.isInteger(status) && status >= 100 && status <= 999 ? status : 500, headers);
  res.end(bodyless ? undefined : body);
}

export function createHttpServer(options: HttpServerOptions): http.Server {
  const { router, tracker, streamUri } = options;
  // Reused connections to the library's proxy; it is on the same machine and carries every request. Its server
  // closes a connection idle for 5 s, and a request sent on one just then fails (read ECONNRESET, a 502); an
  // agent without a timeout never drops idle ones itself, so it drops them after 1 s, well before the server.
  const proxyAgent = streamUri ? new http.Agent({ keepAlive: true, maxSockets: 256, timeout: 1000 }) : undefined;

  const handle = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    target: HttpFunction,
    params: Record<string, string>,
    search: string | undefined,
  ): Promise<void> => {
    const method = req.method ?? 'GET';
    const rawUrl = req.url ?? '/';
    const host = req.headers.host ?? `127.0.0.1:${(req.socket.localPort as number | undefined) ?? 80}`;
    const headers = flattenHeaders(req);
    const query = search === undefined ? {} : queryMap(search);
    const traceParent = headers.traceparent ?? newTraceParent();
    const request: InvocationRequest = {
      invocationId: randomUUID(),
      functionId: target.fn.metadata.functionId,
      inputData: [],
      traceContext: { traceParent, traceState: headers.tracestate, attributes: {} },
    };

    if (streamUri && proxyAgent) {
      await proxyInvocation(req, res, target, request, { host, headers, query, params, proxyAgent, streamUri });
      return;
    }

    let body: Buffer | undefined;
    if (method === 'GET' || method === 'HEAD') req.resume();
    else {
      try {
        body = await readBody(req);
      } catch (err) {
        // The unread rest of the body would be parsed as the next request.
        res.shouldKeepAlive = false;
        return sendEmpty(res, err instanceof RangeError ? 413 : 400);
      }
    }
    const httpData: HttpData = {
      method,
      url: `http://${host}${rawUrl}`,
      headers,
      query,
      params,
      body: body && body.length > 0 ? { bytes: body } : undefined,
    };
    request.inputData.push({ name: target.fn.triggerName, data: { http: httpData } });
    let response: InvocationResponse;
    try {
      response = await options.invoke(target.fn, request);
    } catch {
      // The failure is logged by `invoke`; like the host, the client learns nothing about it.
      return sendEmpty(res, 500);
    }
    try {
      writeResponse(res, httpOutput(response, target.outputName));
    } catch (err) {
      options.onError(`${target.fn.name}: invalid HTTP response: ${(err as Error).message}`);
      sendEmpty(res, 500);
    }
  };

  const proxyInvocation = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    target: HttpFunction,
    request: InvocationRequest,
    ctx: {
      host: string;
      headers: Record<string, string>;
      query: Record<string, string>;
      params: Record<string, string>;
      proxyAgent: http.Agent;
      streamUri: URL;
    },
  ): Promise<void> => {
    // What the host puts in trigger metadata for streaming: params by name plus Headers and Query.
    const triggerMetadata: Record<string, TypedData> = {
      Headers: { json: JSON.stringify(ctx.headers) },
      Query: { json: JSON.stringify(ctx.query) },
    };
    for (const [name, value] of Object.entries(ctx.params)) triggerMetadata[name] = { string: value };
    request.triggerMetadata = triggerMetadata;
    request.inputData.push({
      name: target.fn.triggerName,
      data: {
        http: {
          method: req.method,
          url: `http://${ctx.host}${req.url ?? '/'}`,
          headers: ctx.headers,
          params: ctx.params,
        },
      },
    });

    const proxyReq = http.request(ctx.streamUri, {
      method: req.method,
      path: req.url,
      agent: ctx.proxyAgent,
      headers: {
        ...req.headers,
        'x-ms-invocation-id': request.invocationId,
        'x-forwarded-host': ctx.host,
        'x-forwarded-proto': 'http',
      },
    });
    let cancelled = false;
    const cancelProxy = (): void => {
      cancelled = true;
      proxyReq.destroy();
    };
    const finished = new Promise<void>((resolve) => res.on('close', resolve));
    res.on('close', () => {
      if (!res.writableFinished) cancelProxy();
    });
    proxyReq.on('response', (proxyRes) => {
      const headers: http.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(proxyRes.headers)) {
        if (!hopByHop.has(name) && name !== 'x-ms-invocation-id' && value !== undefined) headers[name] = value;
      }
      res.writeHead(proxyRes.statusCode ?? 200, headers);
      proxyRes.pipe(res);
      proxyRes.on('error', () => res.destroy());
    });
    proxyReq.on('error', (err) => {
      if (cancelled) return;
      options.onError(`${target.fn.name}: HTTP stream proxy failed: ${err.message}`);
      sendEmpty(res, 502);
    });
    req.pipe(proxyReq);

    // The library answers through its proxy only when the http output is an object; otherwise the
    // host itself sends the empty 200 it sends for functions without a response.
    let libraryResponds = false;
    const observe: ResultObserver = (context, result) => {
      const output =
        target.outputName === undefined || target.outputName === '$return'
          ? result
          : (context as { extraOutputs?: { get(name: string): unknown } }).extraOutputs?.get(target.outputName);
      libraryResponds = typeof output === 'object' && output !== null;
    };
    try {
      await options.invoke(target.fn, request, observe);
    } catch {
      cancelProxy();
      if (!res.headersSent) sendEmpty(res, 500);
      else res.destroy();
      return;
    }
    if (!libraryResponds) {
      cancelProxy();
      sendEmpty(res, 200);
    }
    await finished;
  };

  const server = http.createServer({ keepAlive: true, noDelay: true }, (req, res) => {
    if (options.isClosing()) {
      req.resume();
      res.writeHead(503, { 'content-length': '0', connection: 'close' });
      res.end();
      return;
    }
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const method = req.method ?? 'GET';
    const hit = router.match(q < 0 ? url : url.slice(0, q), (f) => f.methods === null || f.methods.has(method));
    if (!hit) {
      req.resume();
      return sendEmpty(res, 404);
    }
    void tracker.run(
      () =>
        handle(req, res, hit.value, hit.params, q < 0 ? undefined : url.slice(q + 1)).catch((err: unknown) => {
          options.onError(`${hit.value.fn.name}: ${(err as Error).stack ?? String(err)}`);
          sendEmpty(res, 500);
        }),
      hit.value.fn.name,
    );
  });
  // Longer than typical client pools keep idle sockets, so load tests don't race the server's close.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.on('close', () => proxyAgent?.destroy());
  return server;
}

export function listen(server: http.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
