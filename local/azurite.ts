import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';

import { freePort } from './ports';
import { stopChild } from './processes';

// Azurite's well-known development account (public, documented by Microsoft; not a secret).
const ACCOUNT = 'devstoreaccount1';
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteOptions {
  /** 0 = a free port. */
  port?: number;
  /** Folder to persist data in; omitted = in memory. */
  location?: string;
  /** Azurite's V8 heap limit (--max-old-space-size), for large in-memory data sets. */
  maxHeapMb?: number;
  log?: (line: string) => void;
}

export interface Azurite {
  readonly port: number;
  readonly connectionString: string;
  /** Its process id (the benchmark reads its CPU time). */
  readonly pid: number;
  close(): Promise<void>;
}

/**
 * Starts Azurite's Table service as a child process (its own event loop, so it does not compete with the
 * host for one). --skipApiVersionCheck because the current SDKs send a newer API version than Azurite knows;
 * --disableTelemetry because this machine has no internet.
 */
export async function startAzurite(options: AzuriteOptions = {}): Promise<Azurite> {
  const port = options.port || (await freePort());
  const args = [
    // In memory, Azurite keeps every entity on its heap: a million-operation audit log needs more than
    // Node's default (about 4 GiB here), or Azurite dies of it.
    ...(options.maxHeapMb ? [`--max-old-space-size=${options.maxHeapMb}`] : []),
    require.resolve('azurite/dist/src/table/main.js'),
    '--tableHost',
    '127.0.0.1',
    '--tablePort',
    String(port),
    '--disableTelemetry',
    '--skipApiVersionCheck',
    '--silent',
  ];
  if (options.location) {
    mkdirSync(options.location, { recursive: true });
    args.push('--location', options.location);
  } else {
    args.push('--inMemoryPersistence');
  }
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  await waitForListening(child, options.log);
  return {
    port,
    pid: child.pid!,
    connectionString:
      `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};` +
      `TableEndpoint=http://127.0.0.1:${port}/${ACCOUNT};`,
    // SIGINT: Azurite saves its data on SIGINT only; on SIGTERM it dies with up to 5 s of writes unsaved.
    close: () => stopChild(child, { name: `Azurite (port ${port})`, graceMs: 5000, signal: 'SIGINT' }),
  };
}

function waitForListening(child: ChildProcess, log?: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`Azurite did not start within 30 s:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (/successfully (started|listening)/i.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      log?.(`azurite: ${chunk.toString().trim()}`);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Azurite exited with code ${code}:\n${output}`));
    });
  });
}
