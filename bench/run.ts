/**
 * `npm run bench [-- --quick]`: the benchmark of BENCHMARKS.md. Starts its own local stack (Azurite in memory,
 * the development broker, the local host), measures, prints a table and writes bench-results.json.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

import { projectRoot } from '../local/root';
import { openStore } from '../shared/storage';
import { LOAD_DAYS, loadAuditLog, timeQueries } from './audit';
import { latencyAtRate, rawWritesPerSecond, throughput } from './pipeline';
import { startBenchStack } from './stack';

const quick = process.argv.includes('--quick');
const operationsArg = process.argv.indexOf('--operations');
const profile = {
  ...(quick
    ? { rawWrites: 5_000, throughputOps: 3_000, rate: 200, rateSeconds: 20, auditOps: 100_000, queryRounds: 20 }
    : { rawWrites: 10_000, throughputOps: 10_000, rate: 200, rateSeconds: 60, auditOps: 1_000_000, queryRounds: 50 }),
  // `--operations N` sizes the audit log for the query phase differently (e.g. to see how queries scale).
  ...(operationsArg > 0 ? { auditOps: Number(process.argv[operationsArg + 1]) } : {}),
};

const log = (line: string) => console.log(line);

async function main(): Promise<void> {
  const started = Date.now();
  log(`Customer Sync benchmark (${quick ? 'quick' : 'full'} profile), starting the local stack…`);
  const stack = await startBenchStack();
  try {
    const connection = stack.settings.STORAGE_CONNECTION_STRING!;
    log('1/4 raw Azurite writes (the ceiling)…');
    const raw = await rawWritesPerSecond(connection, profile.rawWrites);

    log(`2/4 end-to-end throughput: ${profile.throughputOps} operations at concurrency 64…`);
    const pipeline = await throughput(stack, profile.throughputOps);

    log(`3/4 latency at a steady ${profile.rate} operations/s for ${profile.rateSeconds} s…`);
    const latency = await latencyAtRate(stack, profile.rate, profile.rateSeconds);

    const live = profile.throughputOps + latency.operations;
    log(`4/4 audit queries: loading ${profile.auditOps - live} operations over ${LOAD_DAYS} days…`);
    const loadStarted = Date.now();
    const store = await openStore(connection, stack.settings.TABLE_PREFIX);
    const samples = await loadAuditLog(store, profile.auditOps - live, log);
    const loadSeconds = Math.round((Date.now() - loadStarted) / 1000);
    log(`    loaded in ${loadSeconds} s; timing each filter kind…`);
    const queries = await timeQueries(stack, samples, profile.queryRounds);

    const results = {
      profile: quick ? 'quick' : 'full',
      measuredAt: new Date().toISOString(),
      machine: machineFacts(),
      rawWritesPerSecond: raw,
      opsPerSecond: pipeline.opsPerSecond,
      opsPerSecondVsRaw: Math.round((pipeline.opsPerSecond / raw) * 100) / 100,
      submitPerSecond: pipeline.submitPerSecond,
      latencyMs: { p50: latency.p50, p95: latency.p95, p99: latency.p99 },
      latencyRun: {
        offeredRate: latency.offeredRate,
        achievedRate: latency.achievedRate,
        operations: latency.operations,
        failedSubmits: latency.failedSubmits,
        firstFailure: latency.firstFailure,
      },
      auditQueryMs: Object.fromEntries(Object.entries(queries).map(([k, q]) => [k, { p50: q.p50, p95: q.p95 }])),
      entitiesReadPerItem: Object.fromEntries(Object.entries(queries).map(([k, q]) => [k, q.entitiesReadPerItem])),
      peakRssMb: stack.hostPeakRssMb(),
      operations: profile.auditOps,
      loadSeconds,
      durationSeconds: Math.round((Date.now() - started) / 1000),
    };
    writeFileSync(join(projectRoot(), 'bench-results.json'), `${JSON.stringify(results, null, 2)}\n`);
    printTable(results);
  } catch (error) {
    console.error(`The host's last output:\n${stack.hostLog()}`);
    throw error;
  } finally {
    await stack.stop();
  }
}

function machineFacts() {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  };
}

function printTable(r: {
  rawWritesPerSecond: number;
  opsPerSecond: number;
  opsPerSecondVsRaw: number;
  latencyMs: { p50: number; p95: number; p99: number };
  auditQueryMs: Record<string, { p50: number; p95: number }>;
  entitiesReadPerItem: Record<string, number>;
  peakRssMb: number;
  operations: number;
  durationSeconds: number;
}): void {
  const row = (name: string, value: string, target: string) =>
    log(`  ${name.padEnd(34)} ${value.padStart(16)}   ${target}`);
  log('');
  row('figure', 'measured', 'target');
  row('raw Azurite writes/s (ceiling)', String(r.rawWritesPerSecond), '');
  row('end to end operations/s', String(r.opsPerSecond), `≥ 500 and ≥ 0.3 × raw (${r.opsPerSecondVsRaw} × raw)`);
  row(
    'submit → Synced p50/p95/p99 ms',
    `${r.latencyMs.p50}/${r.latencyMs.p95}/${r.latencyMs.p99}`,
    'p95 ≤ 250 at 200/s',
  );
  for (const [kind, q] of Object.entries(r.auditQueryMs)) {
    const target = kind === 'fieldIn24h' ? 'p95 ≤ 1000' : 'p95 ≤ 100';
    row(`query ${kind} p50/p95 ms`, `${q.p50}/${q.p95}`, `${target}, ${r.entitiesReadPerItem[kind]} entities/item`);
  }
  row('host peak RSS MB', String(r.peakRssMb), '≤ 512');
  row('operations in the audit log', String(r.operations), '');
  log(`\nWritten to bench-results.json (${r.durationSeconds} s).`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
