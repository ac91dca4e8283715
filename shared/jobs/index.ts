import { notFound } from '../domain/errors';
import type { JobRun } from '../domain/ports';
import type { SyncContext } from '../operations/context';
import { JOB_NAMES, type JobName } from './names';
import { auditRetention } from './retention';
import { syncPendingOperations } from './sync-pending';

type Job = (ctx: SyncContext) => Promise<{ counts: Record<string, number>; message: string }>;

/** Timers and `POST /api/jobs/{job}/run` share these. */
const JOBS: Record<JobName, Job> = {
  'sync-pending-operations': syncPendingOperations,
  'audit-retention': auditRetention,
};
const isJob = (name: string): name is JobName => (JOB_NAMES as readonly string[]).includes(name);

/** Runs a job and records the run, also when it fails (the failure is the run's message). */
export async function runJob(ctx: SyncContext, name: string): Promise<JobRun> {
  if (!isJob(name)) throw notFound('Job', name);
  const job = JOBS[name];
  const started = ctx.clock();
  let outcome: { counts: Record<string, number>; message: string };
  let failure: unknown;
  try {
    outcome = await job(ctx);
  } catch (error) {
    failure = error;
    outcome = { counts: { failed: 1 }, message: `Failed: ${error instanceof Error ? error.message : String(error)}` };
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

export const listJobRuns = (ctx: SyncContext, limit = 50): Promise<JobRun[]> =>
  ctx.store.jobRuns.latest(JOB_NAMES, limit);
