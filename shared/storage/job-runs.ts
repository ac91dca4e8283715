import { odata, type TableClient } from '@azure/data-tables';

import type { JobRun, JobRunLog } from '../domain/ports';
import { invertedTime, packJson, unpackJson } from './tables';

/**
 * Table `JobRuns` — PartitionKey = job name, RowKey = inverted start time (+ a random suffix), so each job's
 * partition lists newest first and "the latest N runs" is a top-N read of a few known partitions.
 */
export class TableJobRunLog implements JobRunLog {
  constructor(private readonly table: TableClient) {}

  async record(run: JobRun): Promise<void> {
    const inverted = invertedTime(run.startedAt);
    await this.table.createEntity({
      partitionKey: run.job,
      rowKey: `${inverted}-${Math.random().toString(36).slice(2, 8)}`,
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
      durationMs: run.durationMs,
      message: run.message,
      ...packJson('counts', run.counts),
      ...(run.directions ? packJson('directions', run.directions) : {}),
    });
  }

  /** Deletes runs started before `before` (retention); returns how many. */
  async deleteBefore(jobs: readonly string[], before: string): Promise<number> {
    let deleted = 0;
    const after = invertedTime(before);
    for (const job of jobs) {
      const filter = odata`PartitionKey eq ${job} and RowKey gt ${after}`;
      for await (const e of this.table.listEntities({ queryOptions: { filter, select: ['RowKey'] } })) {
        await this.table.deleteEntity(job, e.rowKey!);
        deleted++;
      }
    }
    return deleted;
  }

  async latest(jobs: readonly string[], limit: number): Promise<JobRun[]> {
    const perJob = await Promise.all(
      jobs.map(async (job) => {
        const runs: JobRun[] = [];
        const pages = this.table
          .listEntities<Record<string, unknown>>({ queryOptions: { filter: odata`PartitionKey eq ${job}` } })
          .byPage({ maxPageSize: limit });
        for await (const page of pages) {
          for (const e of page) {
            runs.push({
              job,
              startedAt: e.startedAt as string,
              finishedAt: e.finishedAt as string,
              durationMs: e.durationMs as number,
              counts: unpackJson<Record<string, number>>(e, 'counts') ?? {},
              ...(typeof e.directions === 'string'
                ? { directions: unpackJson<Record<string, Record<string, number>>>(e, 'directions') }
                : {}),
              message: e.message as string,
            });
          }
          break; // the first page holds the newest `limit` runs
        }
        return runs;
      }),
    );
    return perJob
      .flat()
      .sort((a, b) => b.startedAt.localeCompare(a.startedAt))
      .slice(0, limit);
  }
}
