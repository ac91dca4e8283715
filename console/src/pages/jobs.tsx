import {
  Button,
  Link,
  Spinner,
  Table,
  TableBody,
  TableCell,
  TableHeader,
  TableHeaderCell,
  TableRow,
} from '@fluentui/react-components';
import { useState } from 'react';

import { api, enc, get } from '../api';
import type { Session } from '../auth';
import { hrefOf } from '../router';
import type { JobRun } from '../types';
import { formatCounts, formatDuration, formatTime, Notice, ProblemBar, useLoad, useStyles } from '../ui';

/** The scheduled jobs, each with what it does. */
const JOBS: { job: string; what: string }[] = [
  { job: 'sync-pending-operations', what: 'Re-rings the doorbell of every customer with work left.' },
  { job: 'crm-sync', what: 'Synchronizes coupled customers with the CRM, both ways.' },
  { job: 'crm-match', what: 'Couples uncoupled customers with CRM rows on the match fields.' },
  { job: 'audit-retention', what: 'Deletes audit data older than the retention period.' },
  { job: 'alerts', what: 'Evaluates the alert rules.' },
];

/** The records behind a run's counts: the operations of its window (crm-sync: those it submitted from the CRM). */
function drillDown(run: JobRun) {
  const window = { from: run.startedAt, to: new Date(Date.parse(run.finishedAt) + 1000).toISOString() };
  if (run.job === 'crm-sync') return hrefOf('operations', { channel: 'crm', ...window });
  return hrefOf('operations', window);
}

/** Runs newest first, with their counts per direction, message and duration; Run now. */
export function JobsPage({ session }: { session: Session; params: URLSearchParams }) {
  const styles = useStyles();
  const { data, error, loading, reload } = useLoad(() => get<{ items: JobRun[] }>('/jobs'), []);
  const [running, setRunning] = useState<string>();
  const [result, setResult] = useState<JobRun>();
  const [runError, setRunError] = useState<unknown>();

  const runNow = async (job: string) => {
    setRunning(job);
    setRunError(undefined);
    setResult(undefined);
    try {
      const { data: run } = await api<JobRun>('POST', `/jobs/${enc(job)}/run`);
      setResult(run);
      reload();
    } catch (e) {
      setRunError(e);
    } finally {
      setRunning(undefined);
    }
  };

  return (
    <div className={styles.page}>
      <h2>Synchronization jobs</h2>
      <Table size="small" className={styles.table} aria-label="Jobs">
        <TableHeader>
          <TableRow>
            <TableHeaderCell>Job</TableHeaderCell>
            <TableHeaderCell>What it does</TableHeaderCell>
            {session.canRepair && <TableHeaderCell>Run</TableHeaderCell>}
          </TableRow>
        </TableHeader>
        <TableBody>
          {JOBS.map(({ job, what }) => (
            <TableRow key={job}>
              <TableCell className={styles.mono}>{job}</TableCell>
              <TableCell>{what}</TableCell>
              {session.canRepair && (
                <TableCell>
                  <Button
                    size="small"
                    aria-label={`Run ${job} now`}
                    disabled={running !== undefined}
                    onClick={() => void runNow(job)}
                  >
                    {running === job ? 'Running…' : 'Run now'}
                  </Button>
                </TableCell>
              )}
            </TableRow>
          ))}
        </TableBody>
      </Table>
      <ProblemBar error={runError} onDismiss={() => setRunError(undefined)} />
      {result && (
        <Notice title={`${result.job} finished in ${formatDuration(result.durationMs)}`}>
          {formatCounts(result.counts)}. {result.message}
        </Notice>
      )}

      <h3>Runs</h3>
      <ProblemBar error={error} />
      <Table size="small" className={styles.table} aria-label="Job runs">
        <TableHeader>
          <TableRow>
            <TableHeaderCell>Job</TableHeaderCell>
            <TableHeaderCell>Started</TableHeaderCell>
            <TableHeaderCell>Duration</TableHeaderCell>
            <TableHeaderCell>Counts</TableHeaderCell>
            <TableHeaderCell>To CRM</TableHeaderCell>
            <TableHeaderCell>From CRM</TableHeaderCell>
            <TableHeaderCell>Message</TableHeaderCell>
            <TableHeaderCell>Records</TableHeaderCell>
          </TableRow>
        </TableHeader>
        <TableBody>
          {data?.items.map((run) => (
            <TableRow key={`${run.job}-${run.startedAt}`}>
              <TableCell className={styles.mono}>{run.job}</TableCell>
              <TableCell>{formatTime(run.startedAt)}</TableCell>
              <TableCell>{formatDuration(run.durationMs)}</TableCell>
              <TableCell>{formatCounts(run.counts)}</TableCell>
              <TableCell>{run.directions ? formatCounts(run.directions.ToCrm) : ''}</TableCell>
              <TableCell>{run.directions ? formatCounts(run.directions.FromCrm) : ''}</TableCell>
              <TableCell>{run.message}</TableCell>
              <TableCell>
                <Link
                  href={drillDown(run)}
                  aria-label={`Operations of the ${run.job} run at ${formatTime(run.startedAt)}`}
                >
                  Operations
                </Link>
                {run.job === 'crm-sync' && (run.counts.failed ?? 0) + (run.counts.skipped ?? 0) > 0 && (
                  <>
                    {' · '}
                    <Link href={hrefOf('sync-errors')}>Sync errors</Link>
                  </>
                )}
              </TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
      {loading && <Spinner size="tiny" label="Loading…" />}
      {data && data.items.length === 0 && <p className={styles.muted}>No runs yet.</p>}
    </div>
  );
}
