import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';

import { startAzurite } from './azurite';
import { hostStopGraceMs, workerArguments } from './host-process';
import { stopChild } from './processes';
import { projectRoot } from './root';
import { devToken, localSettings } from './settings';

/**
 * `npm start`: Azurite (Table Storage, persisted in .local/azurite), the development Service Bus broker, the
 * development Dataverse (the coupled CRM, persisted in .local/dataverse.json) and the local Functions host, each
 * in its own process, on the ports local.settings.json expects. Ctrl-C stops them in reverse order.
 */
const root = projectRoot();
const PORTS = { storage: 10002, broker: 5672, dataverse: 7072, host: 7071 };
/** Dataverse's own service protection limit (requests per user per sliding 5 minutes), so throttling shows locally. */
const DATAVERSE_RATE_LIMIT = { maxRequests: 6000, windowMs: 300_000 };

async function main(): Promise<void> {
  const started = Date.now();
  const stops: (() => Promise<void>)[] = [];
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    process.exit(code);
  };
  const unexpected = (name: string) => (why: string) => {
    if (stopping) return;
    log(name, `${why} unexpectedly; stopping everything`);
    void shutdown(1);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  try {
    await Promise.all(Object.entries(PORTS).map(([name, port]) => assertFree(name, port)));
    // --in-memory: nothing persisted (benchmarks; Azurite saving a large database to disk costs a core).
    const inMemory = process.argv.includes('--in-memory');
    const location = inMemory ? undefined : join(root, '.local', 'azurite');
    const azurite = await startAzurite({ port: PORTS.storage, location });
    stops.push(() => azurite.close());
    log(
      'storage',
      `Azurite Table Storage on 127.0.0.1:${PORTS.storage} (${location ? 'data in .local/azurite' : 'in memory'})`,
    );

    const broker = run('broker', 'dist/local/broker/main.js', ['--port', String(PORTS.broker)], unexpected('broker'));
    stops.push(() => stopChild(broker, { name: 'broker' }));
    await waitForPort(PORTS.broker);

    const dataverseFile = inMemory ? undefined : join(root, '.local', 'dataverse.json');
    const dataverse = run(
      'dataverse',
      'dist/local/dataverse/main.js',
      [
        '--port',
        String(PORTS.dataverse),
        ...(dataverseFile ? ['--data', dataverseFile] : []),
        '--max-requests',
        String(DATAVERSE_RATE_LIMIT.maxRequests),
        '--window-ms',
        String(DATAVERSE_RATE_LIMIT.windowMs),
      ],
      unexpected('dataverse'),
    );
    // SIGTERM lets it save its snapshot before it exits.
    stops.push(() => stopChild(dataverse, { name: 'development Dataverse' }));
    await waitForPort(PORTS.dataverse);

    const host = run(
      'host',
      'dist/local/host/main.js',
      ['--app', root, '--port', String(PORTS.host)],
      unexpected('host'),
      workerArguments(localSettings(root)),
    );
    stops.push(() => stopChild(host, { name: 'Functions host', graceMs: hostStopGraceMs }));
    const baseUrl = `http://localhost:${PORTS.host}/api`;
    await waitForHealthy(`${baseUrl}/health`);

    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`
Customer Sync is running (healthy after ${seconds} s)
  API          ${baseUrl}   (try: curl ${baseUrl}/health)
  Console      ${baseUrl}/console/#token=${devToken(localSettings(root), 'Sync.Operator')}
  Dataverse    http://localhost:${PORTS.dataverse}/api/data/v9.2/   (development; any bearer token)
  Tokens       npm run --silent token -- Channel --channel web
               npm run --silent token -- Sync.Reader | Sync.Operator
  Examples     api.http
Press Ctrl-C to stop.`);
  } catch (error) {
    console.error(`Could not start: ${error instanceof Error ? error.message : String(error)}`);
    await shutdown(1);
  }
}

function run(
  name: string,
  script: string,
  args: string[],
  onExit: (why: string) => void,
  nodeArgs: string[] = [],
): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, join(root, script), ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const forward = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) log(name, line);
  };
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  child.once('exit', (code, signal) => onExit(`exited (${signal ?? code})`));
  return child;
}

const log = (name: string, line: string) => console.log(`[${name.padEnd(9)}] ${line}`);

function assertFree(name: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      reject(new Error(`port ${port} (${name}) is in use — is another instance running?`));
    });
    socket.once('error', () => resolve());
  });
}

async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on port ${port} after ${timeoutMs / 1000} s`);
}

async function waitForHealthy(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
      last = await response.text();
    } catch (error) {
      last = String(error);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not become healthy: ${last}`);
}

void main();
