import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { type Azurite, startAzurite } from '../local/azurite';
import { type DevDataverse, startDevDataverse } from '../local/dataverse';
import { type HostProcess, hostStopGraceMs, launchHost } from '../local/host-process';
import { freePort } from '../local/ports';
import { stopChild } from '../local/processes';
import type { MeterCounts } from '../local/request-meter';
import { projectRoot } from '../local/root';
import { devToken, localSettings } from '../local/settings';

const root = projectRoot();

export interface BenchStack {
  baseUrl: string;
  settings: Record<string, string>;
  /** The development Dataverse the host is coupled with, in this process (only if asked for). */
  dataverse?: DevDataverse;
  /** The stack's processes by name, for CPU accounting; `bench` is this process (and the Dataverse in it). */
  pids(): Record<string, number>;
  token(role: 'Channel' | 'Sync.Reader' | 'Sync.Operator', channel?: string): string;
  /** The host's request meter so far (local/request-meter.ts); undefined with BENCH_METER=0. */
  meterCounts(): Promise<MeterCounts | undefined>;
  /** The last lines the host wrote (for a failed run). */
  hostLog(): string;
  /** The host process's peak resident set size so far (VmHWM), in MiB. */
  hostPeakRssMb(): number;
  stop(): Promise<void>;
}

/** A cron expression that does not fire during a benchmark (midnight on 1 January). */
const NEVER = '0 0 0 1 1 *';

/**
 * The local stack as `npm start -- --in-memory` runs it — Azurite in memory, the development broker and the
 * local Functions host, each its own process — on free ports, so a benchmark never meets leftover data.
 * With `dataverse`, also the development Dataverse, in this process and without a rate limit, and the host
 * coupled with it; without, coupling is off. The crm-sync timer never fires: the benchmark runs the job itself
 * (and a host of the other phases must not reach for whatever listens on local.settings.json's port 7072).
 */
export async function startBenchStack(options: { dataverse?: boolean } = {}): Promise<BenchStack> {
  // 16 GiB of this machine's 24: the full profile's audit log outgrows Node's default heap.
  const azurite: Azurite = await startAzurite({ maxHeapMb: 16_384 });
  const brokerPort = await freePort();
  const broker = spawn(process.execPath, [join(root, 'dist/local/broker/main.js'), '--port', String(brokerPort)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const serviceBus = await firstLineMatching(broker, /^Endpoint=sb:/);
  const dataverse = options.dataverse ? await startDevDataverse({ port: 0 }) : undefined;
  // BENCH_METER=0 leaves the request meter out of the host (its async-context tracking costs host CPU).
  const meterPort = process.env.BENCH_METER === '0' ? undefined : await freePort();
  const settings: Record<string, string> = {
    ...localSettings(root),
    STORAGE_CONNECTION_STRING: azurite.connectionString,
    SERVICEBUS_CONNECTION: serviceBus,
    TABLE_PREFIX: 'bench',
    CUSTOMER_OPERATIONS_QUEUE: 'bench-customer-operations',
    // An empty setting counts as unset: coupling off.
    DATAVERSE_URL: dataverse?.url ?? '',
    DATAVERSE_TOKEN: 'bench',
    CRM_SYNC_SCHEDULE: NEVER,
    ALERTS_SCHEDULE: NEVER,
    ...(meterPort ? { BENCH_METER_PORT: String(meterPort), BENCH_METER_TABLE_PORT: String(azurite.port) } : {}),
  };
  const nodeArgs = [
    // The request meter (local/request-meter.ts): Table Storage requests the host makes, by context.
    ...(meterPort ? [`--require=${join(root, 'dist/local/request-meter.js')}`] : []),
    // BENCH_HOST_CPU_PROF=<dir>: the host writes a V8 CPU profile there when it stops (bench/profile.ts sums it up
    // by component; Chrome DevTools opens it). An argument: NODE_OPTIONS does not take --cpu-prof.
    ...(process.env.BENCH_HOST_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_HOST_CPU_PROF}`] : []),
    // BENCH_HOST_NODE_ARGS: more of Node's arguments for the host, space-separated (e.g. `--trace-gc`).
    ...(process.env.BENCH_HOST_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
  ];
  let host: HostProcess;
  let hostOutput = '';
  try {
    const output = (text: string) => {
      hostOutput = (hostOutput + text).slice(-8000);
    };
    host = await launchHost(settings, undefined, output, nodeArgs);
  } catch (error) {
    await Promise.all([stopChild(broker), azurite.close(), dataverse?.close()]);
    throw error;
  }
  return {
    baseUrl: host.baseUrl,
    settings,
    dataverse,
    pids: () => ({ host: host.process.pid!, azurite: azurite.pid, broker: broker.pid!, bench: process.pid }),
    token: (role, channel) => devToken(settings, role, channel),
    meterCounts: async () =>
      meterPort ? ((await (await fetch(`http://127.0.0.1:${meterPort}/`)).json()) as MeterCounts) : undefined,
    hostLog: () => hostOutput,
    hostPeakRssMb: () => {
      const status = readFileSync(`/proc/${host.process.pid}/status`, 'utf8');
      const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
      return Math.round(kb / 1024);
    },
    stop: async () => {
      await stopChild(host.process, { name: 'Functions host', graceMs: hostStopGraceMs });
      await stopChild(broker);
      await azurite.close();
      await dataverse?.close();
    },
  };
}

function firstLineMatching(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.once('exit', (code) => reject(new Error(`broker exited with ${code}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const line = buffered.split('\n').find((l) => pattern.test(l.trim()));
      if (line) resolve(line.trim());
    });
  });
}
