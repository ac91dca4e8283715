import { randomUUID } from 'node:crypto';

import { runAlerts } from '../alerts/job';
import { crmMatch, type MatchRequest } from '../coupling/match';
import { couplingSettings } from '../coupling/settings';
import { crmSync, SyncRun } from '../coupling/sync';
import { DomainError, notFound } from '../domain/errors';
import type { JobRun } from '../domain/ports';
import type { SyncContext } from '../operations/context';
import { attr, inSpan } from '../telemetry/tracing';
import { JOB_NAMES, type JobName } from './names';
import { auditRetention } from './retention';
import { syncPendingOperations } from './sync-pending';

type Outcome = Pick<JobRun, 'counts' | 'message' | 'directions'>;
interface Job {
  run: (ctx: SyncContext) => Promise<Outcome>;
  /** Runs one at a time across instances, under a lease that outlives its time budget. */
  exclusive?: boolean;
  /** How long its lease lasts; by default the CRM run's budget and a minute more. */
  leaseMs?: (ctx: SyncContext) => number;
}

/** Timers and `POST /api/jobs/{job}/run` share these. */
const JOBS: Record<JobName, Job> = {
  'sync-pending-operations': { run: syncPendingOperations },
  'audit-retention': { run: auditRetention },
  'crm-sync': { run: crmSyncJob, exclusive: true },
  'crm-match': {
    run: (ctx) => crmMatch(ctx, { fields: couplingSettings(ctx).matchFields, createIfNoMatch: false }),
    exclusive: true,
  },
  // Exclusive so that two instances' timers never evaluate or deliver at once. A run takes a few queries and at
  // most one webhook timeout (deliveries go out in parallel), so a short lease: a crashed run holds up the job
  // for about a minute, not the CRM's budget.
  alerts: { run: runAlerts, exclusive: true, leaseMs: (ctx) => 2 * ctx.alerts.timeoutMs + 60_000 },
};
const isJob = (name: string): name is JobName => (JOB_NAMES as readonly string[]).includes(name);

async function crmSyncJob(ctx: SyncContext): Promise<Outcome> {
  const run = new SyncRun(ctx, couplingSettings(ctx), { job: 'crm-sync' });
  const { message } = await crmSync(run);
  return { counts: run.totals(), directions: run.directions, message };
}

/** Runs a match run now with the operator's fields (POST /api/couplings/match). */
export const runMatch = (ctx: SyncContext, request: MatchRequest) =>
  runJob(ctx, 'crm-match', { run: (c) => crmMatch(c, request), exclusive: true });

/**
 * Runs a job and records the run, also when it fails (the failure is the run's message). An exclusive job
 * that another instance is running is refused (JOB_RUNNING) and not recorded.
 */
export async function runJob(ctx: SyncContext, name: string, override?: Job): Promise<JobRun> {
  if (!isJob(name)) throw notFound('Job', name);
  // One span per run (`job crm-sync`): a timer's run is a trace of its own, a manual one is inside its request.
  return inSpan(`job ${name}`, { attributes: { [attr.jobName]: name } }, () => runRecorded(ctx, name, override));
}

async function runRecorded(ctx: SyncContext, name: JobName, override?: Job): Promise<JobRun> {
  const job = override ?? JOBS[name];
  const started = ctx.clock();
  const lease = job.exclusive
    ? await takeLease(ctx, name, started, job.leaseMs?.(ctx) ?? couplingSettings(ctx).budgetMs + 60_000)
    : undefined;
  let outcome: Outcome;
  let failure: unknown;
  try {
    outcome = await job.run(ctx);
  } catch (error) {
    if (error instanceof DomainError && error.code === 'COUPLING_NOT_CONFIGURED') throw error;
    failure = error;
    outcome = { counts: { failed: 1 }, message: `Failed: ${error instanceof Error ? error.message : String(error)}` };
  } finally {
    if (lease) await ctx.store.crmSyncState.release(name, lease);
  }
  const finished = ctx.clock();
  const run: JobRun = {
    job: name,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    ...outcome,
  };
  await ctx.store.jobRuns.record(run);
  if (failure) throw failure;
  return run;
}

/** The lease outlasts the run (its budget and a minute more): a crashed holder blocks the job no longer than that. */
async function takeLease(ctx: SyncContext, job: string, now: Date, leaseMs: number) {
  const until = new Date(now.getTime() + leaseMs);
  const lease = await ctx.store.crmSyncState.acquire(job, randomUUID(), now, until);
  if (!lease)
    throw new DomainError('JOB_RUNNING', `The ${job} job is already running; try again when it has finished.`);
  return lease;
}

export const listJobRuns = (ctx: SyncContext, limit = 50): Promise<JobRun[]> =>
  ctx.store.jobRuns.latest(JOB_NAMES, limit);
