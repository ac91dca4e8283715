// ASP.NET Core route templates as the Functions host uses them: `{name}`, `{name?}`, `{name=default}`,
// `{*rest}`, complex segments (`{file}.{ext}`) and inline constraints (`{id:int}`, `{id:guid}`, ...).
// Literals match case-insensitively. Templates are compiled once; a request only splits its path.

type Check = (value: string) => boolean;

interface Param {
  name: string;
  optional: boolean;
  defaultValue: string | undefined;
  checks: Check[];
}

type Segment =
  | { kind: 'literal'; text: string }
  | { kind: 'param'; param: Param }
  | { kind: 'catchAll'; param: Param }
  | { kind: 'complex'; regex: RegExp; params: Param[] };

interface Route<T> {
  value: T;
  segments: Segment[];
  precedence: number[];
}

export interface RouteMatch<T> {
  value: T;
  params: Record<string, string>;
}

const numeric = (v: string): boolean => v.trim() !== '' && Number.isFinite(Number(v));
const integer = (v: string, limit: number): boolean => /^[+-]?\d+$/.test(v) && Math.abs(Number(v)) <= limit;
const args = (arg: string | undefined): number[] => (arg ?? '').split(',').map((a) => Number(a.trim()));

const constraints: Record<string, (arg: string | undefined) => Check> = {
  int: () => (v) => integer(v, 2 ** 31),
  long: () => (v) => integer(v, 2 ** 63),
  guid: () => (v) => /^[{(]?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}[})]?$/i.test(v),
  bool: () => (v) => /^(true|false)$/i.test(v),
  alpha: () => (v) => /^[a-z]+$/i.test(v),
  datetime: () => (v) => !Number.isNaN(Date.parse(v)),
  decimal: () => numeric,
  double: () => numeric,
  float: () => numeric,
  required: () => (v) => v !== '',
  minlength: (a) => (v) => v.length >= (args(a)[0] ?? 0),
  maxlength: (a) => (v) => v.length <= (args(a)[0] ?? Infinity),
  length: (a) => {
    const [min = 0, max = min] = args(a);
    return (v) => v.length >= min && v.length <= max;
  },
  min: (a) => (v) => numeric(v) && Number(v) >= (args(a)[0] ?? -Infinity),
  max: (a) => (v) => numeric(v) && Number(v) <= (args(a)[0] ?? Infinity),
  range: (a) => {
    const [min = -Infinity, max = Infinity] = args(a);
    return (v) => numeric(v) && Number(v) >= min && Number(v) <= max;
  },
  // ASP.NET does not anchor route regexes and matches them case-insensitively.
  regex: (a) => {
    const re = new RegExp(a ?? '', 'i');
    return (v) => re.test(v);
  },
};

/** Splits at `separator` outside parentheses, so `regex(a:b)` stays whole. */
function splitTopLevel(text: string, separator: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth = Math.max(0, depth - 1);
    else if (c === separator && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function parseParam(token: string, warn: (message: string) => void): { param: Param; catchAll: boolean } {
  // Templates escape braces (e.g. in a regex constraint) by doubling them.
  let body = token.replace(/\{\{/g, '{').replace(/\}\}/g, '}');
  const catchAll = body.startsWith('*');
  body = body.replace(/^\*{1,2}/, '');
  // A catch-all also matches an empty remainder.
  let optional = catchAll;
  if (body.endsWith('?')) {
    optional = true;
    body = body.slice(0, -1);
  }
  const [spec = '', defaultValue] = splitTopLevel(body, '=');
  const [name = '', ...constraintSpecs] = splitTopLevel(spec, ':');
  const checks: Check[] = [];
  for (const c of constraintSpecs) {
    const m = /^(\w+)(?:\((.*)\))?$/s.exec(c);
    const factory = m ? constraints[(m[1] as string).toLowerCase()] : undefined;
    if (m && factory) checks.push(factory(m[2]));
    else warn(`route constraint "${c}" on {${name}} is not supported locally and is ignored`);
  }
  return { param: { name, optional, defaultValue, checks }, catchAll };
}

function parseSegment(text: string, warn: (message: string) => void): Segment {
  const parts: (string | Param)[] = [];
  let literal = '';
  let catchAll = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if ((c === '{' || c === '}') && text[i + 1] === c) {
      literal += c;
      i++;
    } else if (c === '{') {
      let depth = 0;
      let end = i + 1;
      for (; end < text.length; end++) {
        const d = text[end];
        if (d === '(') depth++;
        else if (d === ')') depth--;
        else if (d === '}' && depth <= 0) break;
      }
      if (literal) parts.push(literal);
      literal = '';
      const parsed = parseParam(text.slice(i + 1, end), warn);
      catchAll ||= parsed.catchAll;
      parts.push(parsed.param);
      i = end;
    } else literal += c;
  }
  if (literal) parts.push(literal);

  const [first] = parts;
  if (parts.length === 1 && typeof first === 'object') {
    return catchAll ? { kind: 'catchAll', param: first } : { kind: 'param', param: first };
  }
  if (parts.length === 1 && typeof first === 'string') return { kind: 'literal', text: first.toLowerCase() };
  const params = parts.filter((p): p is Param => typeof p === 'object');
  const source = parts
    .map((p) => (typeof p === 'string' ? p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : p.optional ? '(.*?)' : '(.+?)'))
    .join('');
  return { kind: 'complex', regex: new RegExp(`^${source}$`, 'i'), params };
}

// ASP.NET inbound precedence: per segment, literal < complex < constrained < plain parameter < catch-all.
function precedenceOf(segment: Segment): number {
  switch (segment.kind) {
    case 'literal':
      return 1;
    case 'complex':
      return 2;
    case 'param':
      return segment.param.checks.length > 0 ? 3 : 4;
    case 'catchAll':
      return 5;
  }
}

function comparePrecedence(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function decodeSegment(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function setParam(params: Record<string, string>, param: Param, value: string | undefined): boolean {
  if (value === undefined || value === '') {
    if (param.defaultValue !== undefined) params[param.name] = param.defaultValue;
    return param.optional || param.defaultValue !== undefined;
  }
  for (const check of param.checks) if (!check(value)) return false;
  params[param.name] = value;
  return true;
}

function matchRoute(segments: Segment[], path: string[], lower: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  let i = 0;
  for (const segment of segments) {
    if (segment.kind === 'catchAll') {
      return setParam(params, segment.param, i < path.length ? path.slice(i).join('/') : undefined)
        ? params
        : undefined;
    }
    const value = path[i];
    if (value === undefined) {
      if (segment.kind === 'param' && setParam(params, segment.param, undefined)) continue;
      return undefined;
    }
    if (segment.kind === 'literal') {
      if (lower[i] !== segment.text) return undefined;
    } else if (segment.kind === 'param') {
      if (!setParam(params, segment.param, value)) return undefined;
    } else {
      const m = segment.regex.exec(value);
      if (!m) return undefined;
      for (let p = 0; p < segment.params.length; p++) {
        if (!setParam(params, segment.params[p] as Param, m[p + 1])) return undefined;
      }
    }
    i++;
  }
  return i === path.length ? params : undefined;
}

export class Router<T> {
  // Parameterless templates are by far the most common kind that a path hits exactly; one map lookup.
  readonly #exact = new Map<string, T[]>();
  readonly #patterns: Route<T>[] = [];

  /** @param template route without leading or trailing slashes, e.g. `api/items/{id:int}` */
  add(template: string, value: T, warn: (message: string) => void = () => {}): void {
    const segments = template
      .split('/')
      .filter((s) => s !== '')
      .map((s) => parseSegment(s, warn));
    if (segments.every((s) => s.kind === 'literal')) {
      const key = segments.map((s) => (s as { text: string }).text).join('/');
      const list = this.#exact.get(key) ?? [];
      list.push(value);
      this.#exact.set(key, list);
      return;
    }
    this.#patterns.push({ value, segments, precedence: segments.map(precedenceOf) });
    // Stable sort keeps registration order among routes of equal precedence.
    this.#patterns.sort((a, b) => comparePrecedence(a.precedence, b.precedence));
  }

  /** The highest-precedence route matching `rawPath` (percent-encoded, no query) that `accept`s. */
  match(rawPath: string, accept: (value: T) => boolean): RouteMatch<T> | undefined {
    const path = rawPath
      .split('/')
      .filter((s) => s !== '')
      .map(decodeSegment);
    const lower = path.map((s) => s.toLowerCase());
    const exact = this.#exact.get(lower.join('/'));
    if (exact) {
      for (const value of exact) if (accept(value)) return { value, params: {} };
    }
    for (const route of this.#patterns) {
      if (!accept(route.value)) continue;
      const params = matchRoute(route.segments, path, lower);
      if (params) return { value: route.value, params };
    }
    return undefined;
  }
}
