/**
 * The benchmark's request meter, preloaded into the local Functions host (`NODE_OPTIONS=--require
 * dist/local/request-meter.js`, see bench/stack.ts): counts the requests the host makes to Table Storage, by
 * the context that made them, without touching the app.
 *
 * - Every `http.request`/`https.request` to the Table endpoint's port (`BENCH_METER_TABLE_PORT`) is counted;
 *   that is what the Azure SDK's Node HTTP client (@typespec/ts-http-runtime's `nodeHttpClient`) calls for every
 *   request, retries included.
 * - A request is attributed to the inbound HTTP request it was made for: each `'request'` event of an HTTP
 *   server in the host (the host's own and the library's streaming proxy, which forwards the same path) runs in
 *   an AsyncLocalStorage context named by the path: `completionDetection` for the benchmark's reads
 *   (`…/customer-updates`, `/api/operations…`), `submit` for any other. A request made outside every inbound
 *   HTTP request is `process`: queue-triggered work arrives over AMQP, and timers fire on their own.
 * - A write the WriteBatcher groups (one transaction carrying entries of several operations) is one request,
 *   counted under whichever context started it.
 *
 * The counts are served as JSON on `127.0.0.1:BENCH_METER_PORT`. Without both settings this module does nothing.
 * Tracking async context has a cost of its own (Node 20's AsyncLocalStorage enables promise hooks), which the
 * host's CPU figures then include; `BENCH_METER=0` leaves the meter out.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import https from 'node:https';

export type MeterContext = 'submit' | 'completionDetection' | 'process';

export interface MeterCounts {
  /** Requests to Table Storage by the context that made them. */
  storage: Record<MeterContext, number>;
  /** Inbound HTTP requests to the host by context. */
  inbound: Record<Exclude<MeterContext, 'process'>, number>;
  /** Requests to Table Storage outside completion detection, by method and table (`POST $batch`: transactions). */
  byKind: Record<string, number>;
}

const detection = /\/customer-updates(?:[?/]|$)|^\/api\/operations(?:[?/]|$)/;

function install(tablePort: string, meterPort: number): void {
  const context = new AsyncLocalStorage<MeterContext>();
  const counts: MeterCounts = {
    storage: { submit: 0, completionDetection: 0, process: 0 },
    inbound: { submit: 0, completionDetection: 0 },
    byKind: {},
  };

  const meter = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(counts));
  });

  const emit = http.Server.prototype.emit as (this: http.Server, event: string | symbol, ...args: unknown[]) => boolean;
  http.Server.prototype.emit = function (this: http.Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'request' || this === meter) return emit.call(this, event, ...args);
    const req = args[0] as http.IncomingMessage;
    const name = detection.test(req.url ?? '/') ? 'completionDetection' : 'submit';
    // A streamed request reaches the library's proxy server too, forwarded by the host: count it once.
    if (req.headers['x-ms-invocation-id'] === undefined) counts.inbound[name]++;
    return context.run(name, () => emit.call(this, event, ...args));
  } as typeof http.Server.prototype.emit;

  /** The request's port, method and path, from `request(url[, options])` or `request(options)`. */
  const target = (args: unknown[]) => {
    const parts: { port?: string; method?: string; path?: string } = {};
    for (const arg of args.slice(0, 2)) {
      if (typeof arg === 'string' || arg instanceof URL) {
        const url = new URL(arg);
        Object.assign(parts, { port: url.port, path: url.pathname });
      } else if (arg && typeof arg === 'object') {
        const { port, method, path } = arg as { port?: unknown; method?: unknown; path?: unknown };
        if (port !== undefined) parts.port = String(port);
        if (typeof method === 'string') parts.method = method;
        if (typeof path === 'string') parts.path = path;
      }
    }
    return parts;
  };
  const wrap = (module: typeof http | typeof https) => {
    const request = module.request;
    module.request = function (...args: unknown[]) {
      const { port, method = 'GET', path = '' } = target(args);
      if (port === tablePort) {
        const made = context.getStore() ?? 'process';
        counts.storage[made]++;
        // `/<account>/<table>(keys)?query`: the table (a prefixed name) or `$batch`.
        const table = /^\/[^/]+\/([^/(?]+)/.exec(path)?.[1] ?? path;
        const kind = `${method} ${table}`;
        if (made !== 'completionDetection') counts.byKind[kind] = (counts.byKind[kind] ?? 0) + 1;
      }
      return (request as (...a: unknown[]) => http.ClientRequest).apply(module, args);
    } as typeof module.request;
  };
  wrap(http);
  wrap(https);

  meter.listen(meterPort, '127.0.0.1');
  meter.unref();
}

const tablePort = process.env.BENCH_METER_TABLE_PORT;
const meterPort = Number(process.env.BENCH_METER_PORT);
if (tablePort && meterPort) install(tablePort, meterPort);
