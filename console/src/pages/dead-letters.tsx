import {
  Spinner,
  Table,
  TableBody,
  TableCell,
  TableHeader,
  TableHeaderCell,
  TableRow,
} from '@fluentui/react-components';

import { get } from '../api';
import type { Session } from '../auth';
import { formatTime, ProblemBar, useLoad, useStyles } from '../ui';

interface DeadLetter {
  messageId: string;
  reason: string;
  body: string;
  receivedAt: string;
}

/** Queue messages refused as not a doorbell (GET /api/dead-letters), newest first. */
export function DeadLettersPage(_: { session: Session; params: URLSearchParams }) {
  const styles = useStyles();
  const { data, error, loading } = useLoad(() => get<{ items: DeadLetter[] }>('/dead-letters?top=200'), []);
  return (
    <div className={styles.page}>
      <h2>Dead letters</h2>
      <p className={styles.muted}>
        Queue messages that were not a customer doorbell: recorded with the reason and never retried.
      </p>
      <ProblemBar error={error} />
      <Table size="small" className={styles.table} aria-label="Dead letters">
        <TableHeader>
          <TableRow>
            <TableHeaderCell>Received</TableHeaderCell>
            <TableHeaderCell>Message id</TableHeaderCell>
            <TableHeaderCell>Reason</TableHeaderCell>
            <TableHeaderCell>Body</TableHeaderCell>
          </TableRow>
        </TableHeader>
        <TableBody>
          {data?.items.map((d) => (
            <TableRow key={`${d.messageId}-${d.receivedAt}`}>
              <TableCell>{formatTime(d.receivedAt)}</TableCell>
              <TableCell className={styles.mono}>{d.messageId}</TableCell>
              <TableCell>{d.reason}</TableCell>
              <TableCell className={styles.mono}>{d.body.length > 200 ? `${d.body.slice(0, 200)}…` : d.body}</TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
      {loading && <Spinner size="tiny" label="Loading…" />}
      {data && data.items.length === 0 && <p className={styles.muted}>No dead letters.</p>}
    </div>
  );
}
