/**
 * `npm run bench [-- --quick] [-- --only coupling]`: the benchmark of BENCHMARKS.md. Starts its own local stack
 * (Azurite in memory, the development broker, the local host), measures, prints a table and writes
 * bench-results.json. The coupling phase runs last, on a fresh stack of its own with the development Dataverse,
 * so that neither its customers nor the other phases' ones are in the other's data.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

import { projectRoot } from '../local/root';
import { openStore } from '../shared/storage';
import { LOAD_DAYS, loadAuditLog, timeQueries } from './audit';
import { couplingPhase, type CouplingResults } from './coupling';
import { type Cost, defaultCompletion, latencyAtRate, rawWritesPerSecond, throughput } from './pipeline';
import { type BenchStack, startBenchStack } from './stack';

const quick = process.argv.includes('--quick');
const operationsArg = process.argv.indexOf('--operations');
const rateArg = process.argv.indexOf('--rate');
const onlyArg = process.argv.indexOf('--only');
const only = onlyArg > 0 ? process.argv[onlyArg + 1] : undefined;
if (only !== undefined && only !== 'coupling' && only !== 'pipeline') {
  throw new Error(`--only knows coupling (phase 5) and pipeline (phases 1–3), not ${only}`);
}
const profile = {
  ...(quick
    ? { rawWrites: 5_000, throughputOps: 3_000, rate: 200, rateSeconds: 20, auditOps: 100_000, queryRounds: 20 }
    : { rawWrites: 10_000, throughputOps: 10_000, rate: 200, rateSeconds: 60, auditOps: 1_000_000, queryRounds: 50 }),
  // `--operations N` sizes the audit log for the query phase differently (e.g. to see how queries scale).
  ...(operationsArg > 0 ? { auditOps: Number(process.argv[operationsArg + 1]) } : {}),
  // `--rate N` offers the latency phase N operations per second instead of 200 (e.g. to see the path's latency
  // below the machine's capacity, where no queue builds).
  ...(rateArg > 0 ? { rate: Number(process.argv[rateArg + 1]) } : {}),
  // BENCH_COUPLING_CUSTOMERS sizes the coupling phase (0 leaves it out).
  couplingCustomers: Number(process.env.BENCH_COUPLING_CUSTOMERS ?? (quick ? 2_000 : 10_000)),
};
const pipelinePhases = only !== 'coupling';
const auditPhase = only === undefined;
// `--compare-completion`: a second throughput run right after the first, detecting completion the other way
// (`poll` reads every operation, `feed` reads the channels' feed; see bench/pipeline.ts), for comparison.
const compareCompletion = process.argv.includes('--compare-completion');
const couplingPhaseRuns = only !== 'pipeline' && profile.couplingCustomers > 0;

const log = (line: string) => console.log(line);

async function main(): Promise<void> {
  const started = Date.now();
  const phases = (pipelinePhases ? 3 : 0) + (auditPhase ? 1 : 0) + (couplingPhaseRuns ? 1 : 0);
  const name = only ? `${only} only` : quick ? 'quick' : 'full';
  log(`Customer Sync benchmark (${name} profile), starting the local stack…`);
  const results: Record<string, unknown> = {
    profile: name,
    measuredAt: new Date().toISOString(),
    machine: machineFacts(),
  };
  if (pipelinePhases) Object.assign(results, await pipelineAndAuditPhases(phases));
  if (couplingPhaseRuns) {
    const n = profile.couplingCustomers;
    log(`${phases}/${phases} coupling with the development Dataverse: ${n} customers, on a fresh stack…`);
    const stack = await startBenchStack({ dataverse: true });
    try {
      const coupling = await couplingPhase(stack, { customers: n, log });
      results.coupling = { ...coupling, hostPeakRssMb: stack.hostPeakRssMb() };
    } catch (error) {
      console.error(`The host's last output:\n${stack.hostLog()}`);
      throw error;
    } finally {
      await stack.stop();
    }
  }
  results.durationSeconds = Math.round((Date.now() - started) / 1000);
  writeFileSync(join(projectRoot(), 'bench-results.json'), `${JSON.stringify(results, null, 2)}\n`);
  if (pipelinePhases) printTable(results as unknown as PipelineResults);
  if (results.coupling) printCouplingTable(results.coupling as CouplingResults);
  log(`\nWritten to bench-results.json (${String(results.durationSeconds)} s).`);
}

/** Phases 1–4 (raw writes, throughput, latency, audit queries) on one stack, as before the coupling phase. */
async function pipelineAndAuditPhases(phases: number) {
  const stack = await startBenchStack();
  try {
    const connection = stack.settings.STORAGE_CONNECTION_STRING!;
    log(`1/${phases} raw Azurite writes (the ceiling)…`);
    const raw = await rawWritesPerSecond(connection, profile.rawWrites);

    log(`2/${phases} end-to-end throughput: ${profile.throughputOps} operations at concurrency 64…`);
    const pipeline = await throughput(stack, profile.throughputOps);
    const other = defaultCompletion === 'feed' ? 'poll' : 'feed';
    if (compareCompletion) log(`    again, completion detected by ${other} instead of ${defaultCompletion}…`);
    const compared = compareCompletion
      ? await throughput(stack, profile.throughputOps, { completion: other })
      : undefined;

    log(`3/${phases} latency at a steady ${profile.rate} operations/s for ${profile.rateSeconds} s…`);
    const latency = await latencyAtRate(stack, profile.rate, profile.rateSeconds);

    const live = profile.throughputOps + (compared?.operations ?? 0) + latency.operations;
    const audit = auditPhase ? await auditQueries(stack, profile.auditOps - live, phases) : undefined;

    return {
      rawWritesPerSecond: raw,
      opsPerSecond: pipeline.opsPerSecond,
      opsPerSecondVsRaw: Math.round((pipeline.opsPerSecond / raw) * 100) / 100,
      submitPerSecond: pipeline.submitPerSecond,
      requestsPerOperation: pipeline.requestsPerOperation,
      requestsPerOperationByKind: pipeline.requestsPerOperationByKind,
      cpuMsPerOperation: pipeline.cpuMsPerOperation,
      throughputRun: {
        operations: pipeline.operations,
        completion: pipeline.completion,
        completionDetectionRequestsPerOperation: pipeline.completionDetectionRequestsPerOperation,
        machineBusyPercent: pipeline.machineBusyPercent,
        otherCpuSeconds: pipeline.otherCpuSeconds,
      },
      ...(compared ? { throughputCompared: compared } : {}),
      latencyMs: { p50: latency.p50, p95: latency.p95, p99: latency.p99 },
      latencyRun: {
        completion: latency.completion,
        offeredRate: latency.offeredRate,
        achievedRate: latency.achievedRate,
        operations: latency.operations,
        failedSubmits: latency.failedSubmits,
        firstFailure: latency.firstFailure,
        requestsPerOperation: latency.requestsPerOperation,
        completionDetectionRequestsPerOperation: latency.completionDetectionRequestsPerOperation,
        cpuMsPerOperation: latency.cpuMsPerOperation,
        machineBusyPercent: latency.machineBusyPercent,
        otherCpuSeconds: latency.otherCpuSeconds,
      },
      ...audit,
      peakRssMb: stack.hostPeakRssMb(),
      operations: audit ? profile.auditOps : live,
    };
  } catch (error) {
    console.error(`The host's last output:\n${stack.hostLog()}`);
    throw error;
  } finally {
    await stack.stop();
  }
}

/** Phase 4: the audit log filled up to `profile.auditOps` operations (`load` more), then each filter kind timed. */
async function auditQueries(stack: BenchStack, load: number, phases: number) {
  log(`4/${phases} audit queries: loading ${load} operations over ${LOAD_DAYS} days…`);
  const loadStarted = Date.now();
  const store = await openStore(stack.settings.STORAGE_CONNECTION_STRING!, stack.settings.TABLE_PREFIX);
  const samples = await loadAuditLog(store, load, log);
  const loadSeconds = Math.round((Date.now() - loadStarted) / 1000);
  log(`    loaded in ${loadSeconds} s; timing each filter kind…`);
  const queries = await timeQueries(stack, samples, profile.queryRounds);
  return {
    auditQueryMs: Object.fromEntries(Object.entries(queries).map(([k, q]) => [k, { p50: q.p50, p95: q.p95 }])),
    entitiesReadPerItem: Object.fromEntries(Object.entries(queries).map(([k, q]) => [k, q.entitiesReadPerItem])),
    loadSeconds,
  };
}

function machineFacts() {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  };
}

interface PipelineResults {
  rawWritesPerSecond: number;
  opsPerSecond: number;
  opsPerSecondVsRaw: number;
  requestsPerOperation?: Cost['requestsPerOperation'];
  cpuMsPerOperation: Cost['cpuMsPerOperation'];
  throughputRun: { completion: string; completionDetectionRequestsPerOperation?: number; machineBusyPercent: number };
  throughputCompared?: { completion: string; opsPerSecond: number } & Cost;
  latencyMs: { p50: number; p95: number; p99: number };
  latencyRun: {
    offeredRate: number;
    achievedRate: number;
    cpuMsPerOperation: Cost['cpuMsPerOperation'];
    requestsPerOperation?: Cost['requestsPerOperation'];
  };
  auditQueryMs?: Record<string, { p50: number; p95: number }>;
  entitiesReadPerItem: Record<string, number>;
  peakRssMb: number;
  operations: number;
}

const row = (name: string, value: string, target: string) =>
  log(`  ${name.padEnd(34)} ${value.padStart(16)}   ${target}`);

function printTable(r: PipelineResults): void {
  log('');
  row('figure', 'measured', 'target');
  row('raw Azurite writes/s (ceiling)', String(r.rawWritesPerSecond), '');
  row(
    'end to end operations/s',
    String(r.opsPerSecond),
    `≥ 300 and ≥ 0.1 × raw (${r.opsPerSecondVsRaw} × raw; completion by ${r.throughputRun.completion})`,
  );
  const requests = (q: Cost['requestsPerOperation']) => (q ? `${q.submit}+${q.process}=${q.total}` : 'not metered');
  const cpu = (c: Cost['cpuMsPerOperation']) =>
    [c.host, c.storage, c.broker, c.loadGenerator].map((ms) => ms.toFixed(1)).join('/');
  const detection = (n: number | undefined) => (n === undefined ? '' : `; ${n}/op more to detect completion`);
  row(
    'storage requests/op (submit+process)',
    requests(r.requestsPerOperation),
    `≤ 5 (total)${detection(r.throughputRun.completionDetectionRequestsPerOperation)}`,
  );
  row(
    'CPU ms/op, total',
    String(r.cpuMsPerOperation.total),
    `≤ 6.5 (machine ${r.throughputRun.machineBusyPercent}% busy)`,
  );
  row('  host/storage/broker/load generator', cpu(r.cpuMsPerOperation), '');
  if (r.throughputCompared) {
    const c = r.throughputCompared;
    row(
      `  by ${c.completion}: operations/s`,
      String(c.opsPerSecond),
      `requests/op ${requests(c.requestsPerOperation)}${detection(c.completionDetectionRequestsPerOperation)}`,
    );
    row(`  by ${c.completion}: CPU ms/op`, String(c.cpuMsPerOperation.total), cpu(c.cpuMsPerOperation));
  }
  row(
    'submit → Synced p50/p95/p99 ms',
    `${r.latencyMs.p50}/${r.latencyMs.p95}/${r.latencyMs.p99}`,
    `p95 ≤ 250 at 200/s (offered ${r.latencyRun.offeredRate}/s, achieved ${r.latencyRun.achievedRate}/s)`,
  );
  const at = `at ${r.latencyRun.offeredRate}/s`;
  row(`  ${at}: storage requests/op`, requests(r.latencyRun.requestsPerOperation), '');
  row(`  ${at}: CPU ms/op`, String(r.latencyRun.cpuMsPerOperation.total), cpu(r.latencyRun.cpuMsPerOperation));
  for (const [kind, q] of Object.entries(r.auditQueryMs ?? {})) {
    const target = kind === 'fieldIn24h' ? 'p95 ≤ 1000' : 'p95 ≤ 100';
    row(`query ${kind} p50/p95 ms`, `${q.p50}/${q.p95}`, `${target}, ${r.entitiesReadPerItem[kind]} entities/item`);
  }
  row('host peak RSS MB', String(r.peakRssMb), '≤ 512');
  row('operations in the audit log', String(r.operations), '');
}

function printCouplingTable(c: CouplingResults): void {
  log('');
  row(`coupling (${c.couplings} couplings)`, 'measured', 'target');
  row(
    'ToCrm inserts/s',
    String(c.insert.recordsPerSecond),
    `≥ 200; ${c.insert.crmRequestsPerRecord} CRM requests/record`,
  );
  row(
    'ToCrm updates/s',
    String(c.toCrm.recordsPerSecond),
    `≥ 200; ${c.toCrm.crmRequestsPerRecord} CRM requests/record`,
  );
  row(
    'FromCrm updates/s (submitted to HQ)',
    String(c.fromCrm.recordsPerSecond),
    `≥ 200; ${c.fromCrm.crmRequestsPerRecord} CRM requests/record`,
  );
  row('FromCrm end to end records/s', String(c.fromCrmEndToEndRecordsPerSecond), 'run + HQ applies + settle run');
  row('both at once records/s', String(c.bothAtOnce.recordsPerSecond), `${c.bothAtOnce.records} records in one run`);
  row(
    'quiet run p50/max ms (HTTP)',
    `${c.quiet.p50HttpMs}/${c.quiet.maxHttpMs}`,
    `< 1000; ${c.quiet.crmRequestsPerRun} CRM requests/run`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
