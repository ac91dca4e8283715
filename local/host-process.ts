import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

import { closeLimitMs } from './host/shutdown';
import { freePort } from './ports';
import { projectRoot } from './root';

const root = projectRoot();

/** How long a host gets between SIGTERM and SIGKILL: past its own limit, so it can first say what hung. */
export const hostStopGraceMs = closeLimitMs + 5000;

export interface HostProcess {
  process: ChildProcess;
  baseUrl: string;
}

/**
 * Node's arguments for the host: `languageWorkers__node__arguments`, the setting with which Azure's Functions
 * host starts its Node worker, so that a heap limit (local.settings.json's) applies here as it would there.
 */
export function workerArguments(settings: Record<string, string>): string[] {
  return (settings.languageWorkers__node__arguments ?? '').split(/\s+/).filter(Boolean);
}

/**
 * Starts the compiled app in the local Functions host as a child process with these settings as its
 * environment, and waits until its health endpoint answers. Used by the end-to-end tests and the benchmark
 * (which may pass Node options that NODE_OPTIONS does not take, such as --cpu-prof).
 */
export async function launchHost(
  settings: Record<string, string>,
  port?: number,
  onOutput?: (text: string) => void,
  nodeArgs: string[] = [],
): Promise<HostProcess> {
  const hostPort = port ?? (await freePort());
  const child = spawn(
    process.execPath,
    [
      ...workerArguments(settings),
      ...nodeArgs,
      join(root, 'dist/local/host/main.js'),
      '--app',
      root,
      '--port',
      String(hostPort),
    ],
    { cwd: root, env: { ...process.env, ...settings }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (c: Buffer) => {
    output += c.toString();
    onOutput?.(c.toString());
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const baseUrl = `http://127.0.0.1:${hostPort}/api`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`host exited with ${child.exitCode}:\n${output}`);
    try {
      if ((await fetch(`${baseUrl}/health`)).ok) return { process: child, baseUrl };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`host did not become healthy:\n${output}`);
}
