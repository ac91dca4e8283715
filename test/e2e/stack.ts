import { join } from 'node:path';

import { inject } from 'vitest';

import { hostStopGraceMs, launchHost } from '../../local/host-process';
import { stopChild } from '../../local/processes';
import { devToken, localSettings } from '../../local/settings';
import { uniqueName } from '../support';

const root = join(__dirname, '..', '..');

export interface Stack {
  baseUrl: string;
  settings: Record<string, string>;
  token(role: 'Channel' | 'Sync.Reader' | 'Sync.Operator', channel?: string): string;
  call(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<Response>;
  /** Stops the host the way Ctrl-C does; kills it, saying so, if it has not exited within `hostStopGraceMs`. */
  stop(): Promise<void>;
  /** Kills the host with SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** Starts the host again on the same port, tables and queue. */
  restart(): Promise<void>;
}

/**
 * Starts the compiled app in the local Functions host as a child process, over the emulators that the global
 * setup owns, with its own tables and queue. Tests talk to it over real HTTP only.
 */
export async function startStack(overrides: Record<string, string> = {}): Promise<Stack> {
  const prefix = uniqueName('e');
  const settings: Record<string, string> = {
    ...localSettings(root),
    STORAGE_CONNECTION_STRING: inject('storageConnectionString'),
    SERVICEBUS_CONNECTION: inject('serviceBusConnectionString'),
    TABLE_PREFIX: prefix,
    CUSTOMER_OPERATIONS_QUEUE: `q-${prefix}`,
    DATAVERSE_URL: inject('dataverseUrl'),
    // Runs of crm-sync are asked for by the tests that mean them: a timer firing mid-file would read (and write)
    // the whole shared development Dataverse and slow the stack down for the test at hand.
    CRM_SYNC_SCHEDULE: '0 0 0 1 1 *',
    // Likewise alerts: a test runs the job when it means to, so a tick cannot fire or deliver mid-test.
    ALERTS_SCHEDULE: '0 0 0 1 1 *',
    ...overrides,
  };
  // What the host prints while it stops (a shutdown step that overran, what it left behind) explains a slow
  // stop, so it is passed on; the rest of its output only with STACK_LOG=1 (for a test being debugged).
  let stopping = false;
  const onOutput = (text: string) => {
    if (!stopping && !process.env.STACK_LOG) return;
    for (const line of text.split('\n')) {
      if (line.trim() && !line.includes('finishing in-flight invocations')) console.warn(`[host] ${line}`);
    }
  };
  let child = await launchHost(settings, undefined, onOutput);
  const port = Number(new URL(child.baseUrl).port);
  const name = () => `Functions host ${child.baseUrl}`;
  const stack: Stack = {
    baseUrl: child.baseUrl,
    settings,
    token: (role, channel) => devToken(settings, role, channel),
    call: async (method, path, options = {}) => {
      const headers: Record<string, string> = { ...options.headers };
      if (options.token) headers.Authorization = `Bearer ${options.token}`;
      let body: string | undefined;
      if (options.body !== undefined) {
        body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
        headers['Content-Type'] ??= 'application/json';
      }
      return fetch(`${stack.baseUrl}${path}`, { method, headers, body });
    },
    stop: () => {
      stopping = true;
      return stopChild(child.process, { name: name(), graceMs: hostStopGraceMs });
    },
    kill: () => stopChild(child.process, { name: name(), kill: true }),
    restart: async () => {
      stopping = false;
      child = await launchHost(settings, port, onOutput);
    },
  };
  return stack;
}

/** Polls until `check` returns a value, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 5000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
