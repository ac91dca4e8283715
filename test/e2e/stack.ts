import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';

import { inject } from 'vitest';

import { launchHost } from '../../local/host-process';
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
  /** Stops the host the way Ctrl-C does. */
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
    ...overrides,
  };
  let child = await launchHost(settings);
  const port = Number(new URL(child.baseUrl).port);
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
    stop: () => stopProcess(child.process, 'SIGTERM'),
    kill: () => stopProcess(child.process, 'SIGKILL'),
    restart: async () => {
      child = await launchHost(settings, port);
    },
  };
  return stack;
}

function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
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
