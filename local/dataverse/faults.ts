/**
 * What makes the development Dataverse misbehave on purpose, and what it counts: fault switches that tests arm
 * (in process, or over HTTP at /_dev/faults from another process), the service-protection rate limit, and request
 * counters. A connector has to survive exactly these (a 5xx, a slow answer, a write whose answer is lost, a 429
 * with Retry-After, an expired delta token), and a real environment cannot be made to produce them on demand.
 */

/** Narrows a switch to some requests, e.g. `{ method: 'PATCH', table: 'contacts' }`; unset matches all. */
export interface FaultFilter {
  method?: string;
  table?: string;
}

export interface DevDataverseFaults {
  /** The next `count` requests are answered with `status` (default 500) before anything is looked at. */
  failNext(count: number, status?: number, filter?: FaultFilter): void;
  /** The next `count` requests are carried out at once but answered `ms` late: for client timeouts. */
  delayNext(count: number, ms: number, filter?: FaultFilter): void;
  /**
   * The next `count` successful writes (POST, PATCH, DELETE) are applied and then the connection is cut without
   * an answer: a write that landed but whose answer was lost.
   */
  dropNextAfterWrite(count: number, filter?: FaultFilter): void;
  /** The next `count` requests get 429 with `Retry-After: retryAfterSeconds` (default 1), as throttling would. */
  throttleNext(count: number, retryAfterSeconds?: number, filter?: FaultFilter): void;
  /** Every delta link issued so far answers as an expired change tracking token does. */
  expireDeltaTokens(): void;
  /** Disarms every switch (an expired token stays expired, as it would in Dataverse). */
  reset(): void;
}

type Armed =
  | { kind: 'fail'; remaining: number; status: number; filter: FaultFilter }
  | { kind: 'delay'; remaining: number; ms: number; filter: FaultFilter }
  | { kind: 'drop'; remaining: number; filter: FaultFilter }
  | { kind: 'throttle'; remaining: number; retryAfterSeconds: number; filter: FaultFilter };

export class FaultSwitches implements DevDataverseFaults {
  private armed: Armed[] = [];

  constructor(private readonly onExpireDeltaTokens: () => void) {}

  failNext(count: number, status = 500, filter: FaultFilter = {}): void {
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new RangeError(`failNext: status must be an HTTP error status (400-599), got ${status}`);
    }
    this.arm({ kind: 'fail', remaining: count, status, filter });
  }

  delayNext(count: number, ms: number, filter: FaultFilter = {}): void {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new RangeError(`delayNext: ms must be >= 0, got ${ms}`);
    this.arm({ kind: 'delay', remaining: count, ms, filter });
  }

  dropNextAfterWrite(count: number, filter: FaultFilter = {}): void {
    this.arm({ kind: 'drop', remaining: count, filter });
  }

  throttleNext(count: number, retryAfterSeconds = 1, filter: FaultFilter = {}): void {
    if (!(Number.isInteger(retryAfterSeconds) && retryAfterSeconds >= 0)) {
      throw new RangeError(`throttleNext: retryAfterSeconds must be a whole number >= 0, got ${retryAfterSeconds}`);
    }
    this.arm({ kind: 'throttle', remaining: count, retryAfterSeconds, filter });
  }

  expireDeltaTokens(): void {
    this.onExpireDeltaTokens();
  }

  reset(): void {
    this.armed = [];
  }

  /** Takes one use of the first armed switch of this kind that matches the request, if any. */
  take<K extends Armed['kind']>(
    kind: K,
    method: string,
    table: string | undefined,
  ): Extract<Armed, { kind: K }> | undefined {
    const index = this.armed.findIndex(
      (armed) =>
        armed.kind === kind &&
        (armed.filter.method === undefined || armed.filter.method.toUpperCase() === method) &&
        (armed.filter.table === undefined || armed.filter.table === table),
    );
    if (index < 0) return undefined;
    const armed = this.armed[index] as Extract<Armed, { kind: K }>;
    if (--armed.remaining <= 0) this.armed.splice(index, 1);
    return armed;
  }

  private arm(armed: Armed): void {
    if (!(Number.isInteger(armed.remaining) && armed.remaining > 0)) {
      throw new RangeError(`a fault switch needs a count of at least 1, got ${armed.remaining}`);
    }
    this.armed.push(armed);
  }
}

/**
 * Applies a JSON body of POST /_dev/faults, e.g. `{"reset": true, "failNext": {"count": 1, "status": 503}}`.
 * `reset` goes first, so one request can replace whatever was armed before.
 */
export function applyFaultRequest(faults: DevDataverseFaults, body: unknown): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TypeError('the body must be a JSON object, e.g. {"failNext": {"count": 1, "status": 503}}');
  }
  const request = body as Record<string, unknown>;
  const known = ['reset', 'failNext', 'delayNext', 'dropNextAfterWrite', 'throttleNext', 'expireDeltaTokens'];
  for (const name of Object.keys(request)) {
    if (!known.includes(name)) throw new TypeError(`unknown fault switch '${name}'; known: ${known.join(', ')}`);
  }
  const args = (name: string): Record<string, unknown> | undefined => {
    const value = request[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'object' || value === null) throw new TypeError(`${name} must be an object`);
    return value as Record<string, unknown>;
  };
  const number = (value: unknown, name: string): number => {
    if (typeof value !== 'number') throw new TypeError(`${name} must be a number`);
    return value;
  };
  const optional = (value: unknown, name: string): number | undefined =>
    value === undefined ? undefined : number(value, name);
  const filter = (value: Record<string, unknown>): FaultFilter => ({
    ...(typeof value.method === 'string' ? { method: value.method } : {}),
    ...(typeof value.table === 'string' ? { table: value.table } : {}),
  });

  if (request.reset === true) faults.reset();
  const fail = args('failNext');
  if (fail)
    faults.failNext(number(fail.count, 'failNext.count'), optional(fail.status, 'failNext.status'), filter(fail));
  const delay = args('delayNext');
  if (delay) faults.delayNext(number(delay.count, 'delayNext.count'), number(delay.ms, 'delayNext.ms'), filter(delay));
  const drop = args('dropNextAfterWrite');
  if (drop) faults.dropNextAfterWrite(number(drop.count, 'dropNextAfterWrite.count'), filter(drop));
  const throttle = args('throttleNext');
  if (throttle) {
    faults.throttleNext(
      number(throttle.count, 'throttleNext.count'),
      optional(throttle.retryAfterSeconds, 'throttleNext.retryAfterSeconds'),
      filter(throttle),
    );
  }
  if (request.expireDeltaTokens === true) faults.expireDeltaTokens();
}

export interface RateLimit {
  maxRequests: number;
  windowMs: number;
}

/**
 * Dataverse's "number of requests" service protection limit: at most maxRequests in any sliding window of
 * windowMs (6,000 per 300 s for real). A refused request is not counted, so a client that waits Retry-After gets in.
 */
export class RateLimiter {
  /** Arrival times of the admitted requests still inside the window, oldest first (a ring buffer). */
  private readonly times: Float64Array;
  private head = 0;
  private size = 0;

  constructor(readonly limit: RateLimit) {
    if (!(Number.isInteger(limit.maxRequests) && limit.maxRequests > 0 && limit.windowMs > 0)) {
      throw new RangeError('rateLimit needs maxRequests >= 1 and windowMs > 0');
    }
    this.times = new Float64Array(limit.maxRequests);
  }

  /** Admits a request now, or says how many whole seconds until one would be admitted. */
  admit(now: number): { admitted: true } | { admitted: false; retryAfterSeconds: number } {
    const capacity = this.times.length;
    while (this.size > 0 && this.times[this.head]! <= now - this.limit.windowMs) {
      this.head = (this.head + 1) % capacity;
      this.size--;
    }
    if (this.size >= capacity) {
      const oldest = this.times[this.head]!;
      return {
        admitted: false,
        retryAfterSeconds: Math.max(1, Math.ceil((oldest + this.limit.windowMs - now) / 1000)),
      };
    }
    this.times[(this.head + this.size) % capacity] = now;
    this.size++;
    return { admitted: true };
  }
}

export interface DevDataverseStats {
  /** Every request to the Web API (not /_dev), whatever it was answered with. */
  total: number;
  byMethod: Record<string, number>;
  /** By table, then method; requests that name no table are under "other". */
  byTable: Record<string, Record<string, number>>;
  /** Answered 429, by the rate limit or throttleNext. */
  throttled: number;
  /** Answered by failNext. */
  failed: number;
  /** Cut by dropNextAfterWrite after their write landed. */
  dropped: number;
}

/** Request counters, so a test or the benchmark can report requests per synchronized record. */
export class RequestStats {
  private stats = RequestStats.empty();

  count(method: string, table: string): void {
    this.stats.total++;
    this.stats.byMethod[method] = (this.stats.byMethod[method] ?? 0) + 1;
    const byMethod = (this.stats.byTable[table] ??= {});
    byMethod[method] = (byMethod[method] ?? 0) + 1;
  }

  note(outcome: 'throttled' | 'failed' | 'dropped'): void {
    this.stats[outcome]++;
  }

  snapshot(): DevDataverseStats {
    return structuredClone(this.stats);
  }

  reset(): void {
    this.stats = RequestStats.empty();
  }

  private static empty(): DevDataverseStats {
    return { total: 0, byMethod: {}, byTable: {}, throttled: 0, failed: 0, dropped: 0 };
  }
}
