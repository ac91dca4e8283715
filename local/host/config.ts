// host.json, app settings and binding expressions, read the way the Functions host reads them.
import fs from 'node:fs';
import path from 'node:path';

import type { LogLevel } from './core';

export type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Case-insensitive lookup, as .NET configuration is. */
export function getPath(source: unknown, ...keys: string[]): unknown {
  let current = source;
  for (const key of keys) {
    if (!isObject(current)) return undefined;
    const match = Object.keys(current).find((k) => k.toLowerCase() === key.toLowerCase());
    current = match === undefined ? undefined : current[match];
  }
  return current;
}

function setPath(target: Json, keys: string[], value: string): void {
  let current = target;
  keys.forEach((key, i) => {
    const existing = Object.keys(current).find((k) => k.toLowerCase() === key.toLowerCase()) ?? key;
    if (i === keys.length - 1) current[existing] = value;
    else {
      const child = current[existing];
      current = isObject(child) ? child : (current[existing] = {});
    }
  });
}

const overridePrefix = 'azurefunctionsjobhost__';

/** host.json with `AzureFunctionsJobHost__a__b` environment overrides applied, as the host does. */
export function readHostJson(appRoot: string, env: NodeJS.ProcessEnv): Json {
  const file = path.join(appRoot, 'host.json');
  const parsed: unknown = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
  const hostJson = isObject(parsed) ? parsed : {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && name.toLowerCase().startsWith(overridePrefix)) {
      setPath(hostJson, name.slice(overridePrefix.length).split('__'), value);
    }
  }
  return hostJson;
}

/** `[d.]hh:mm:ss[.fff]` in milliseconds. */
export function parseTimeSpan(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  const m = typeof value === 'string' ? /^(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)$/.exec(value.trim()) : null;
  if (!m) return undefined;
  const [, d = '0', h = '0', min = '0', s = '0'] = m;
  return Math.round((((Number(d) * 24 + Number(h)) * 60 + Number(min)) * 60 + Number(s)) * 1000);
}

export function toNumber(value: unknown): number | undefined {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

export function isTruthySetting(value: unknown): boolean {
  return value === true || (typeof value === 'string' && /^(true|1)$/i.test(value.trim()));
}

/**
 * Replaces `%NAME%` with app setting NAME, as the host does for every binding property
 * (schedule, queueName, route, ...). Unresolvable names are reported, not silently kept.
 */
export function resolveExpression(value: string, env: NodeJS.ProcessEnv, problems: string[]): string {
  return value.replace(/%([^%\s]+)%/g, (whole, name: string) => {
    const setting = env[name];
    if (setting === undefined) problems.push(`'${whole}' does not resolve to a value (no app setting "${name}")`);
    return setting ?? whole;
  });
}

export const logLevelRank: Record<LogLevel, number> = {
  trace: 0,
  debug: 1,
  information: 2,
  warning: 3,
  error: 4,
  critical: 5,
  none: 6,
};

export function parseLogLevel(value: unknown): LogLevel | undefined {
  if (typeof value !== 'string') return undefined;
  const lower = value.trim().toLowerCase();
  if (lower === 'info') return 'information';
  if (lower === 'warn') return 'warning';
  return lower in logLevelRank ? (lower as LogLevel) : undefined;
}
