import {
  Link,
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
import { hrefOf } from '../router';
import type { OperationSummary } from '../types';
import { formatTime, ProblemBar, useLoad, useStyles } from '../ui';

interface Group {
  code: string;
  count: number;
  channels: string[];
  example: OperationSummary;
}

/** Failed operations grouped by cause (GET /api/failures); each group links to its filtered list. */
export function FailuresPage(_: { session: Session; params: URLSearchParams }) {
  const styles = useStyles();
  const { data, error, loading } = useLoad(() => get<{ items: Group[] }>('/failures'), []);
  return (
    <div className={styles.page}>
      <h2>Failures by cause</h2>
      <ProblemBar error={error} />
      <Table size="small" className={styles.table} aria-label="Failures by cause">
        <TableHeader>
          <TableRow>
            <TableHeaderCell>Error code</TableHeaderCell>
            <TableHeaderCell>Failed operations</TableHeaderCell>
            <TableHeaderCell>Channels</TableHeaderCell>
            <TableHeaderCell>Newest example</TableHeaderCell>
          </TableRow>
        </TableHeader>
        <TableBody>
          {data?.items.map((g) => (
            <TableRow key={g.code}>
              <TableCell>
                <Link href={hrefOf('operations', { status: 'Failed', code: g.code })}>{g.code}</Link>
              </TableCell>
              <TableCell>{g.count}</TableCell>
              <TableCell>{g.channels.join(', ')}</TableCell>
              <TableCell>
                {g.example.lastError?.message ?? g.example.changeDescription}{' '}
                <span className={styles.muted}>({formatTime(g.example.operationTimestamp)})</span>
              </TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
      {loading && <Spinner size="tiny" label="Loading…" />}
      {data && data.items.length === 0 && <p className={styles.muted}>No failed operations.</p>}
    </div>
  );
}
