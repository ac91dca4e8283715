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

interface Rule {
  name: string;
  metric: string;
  threshold: number;
  windowMinutes: number;
  webhookUrl?: string;
  firing: boolean;
}
interface Delivery {
  status: 'Pending' | 'Delivered' | 'Failed';
  attempts: number;
  lastError?: string;
}
interface Firing {
  rule: string;
  metric: string;
  value: number;
  threshold: number;
  firedAt: string;
  resolvedAt?: string;
  delivery?: Delivery;
  resolutionDelivery?: Delivery;
}

/** A webhook delivery as a word: its status, with the attempts and the last error while it is not delivered. */
const deliveryText = (d: Delivery | undefined) =>
  !d
    ? ''
    : d.status === 'Delivered'
      ? 'Delivered'
      : `${d.status} (${d.attempts} attempts${d.lastError ? `: ${d.lastError}` : ''})`;

/** Alert rules and their firings (API.md "Alerts"), newest first. */
export function AlertsPage(_: { session: Session; params: URLSearchParams }) {
  const styles = useStyles();
  const { data, error, loading } = useLoad(async () => {
    const [rules, alerts] = await Promise.all([
      get<{ items: Rule[] }>('/alert-rules'),
      get<{ items: Firing[] }>('/alerts'),
    ]);
    return { rules: rules.items, alerts: alerts.items };
  }, []);
  return (
    <div className={styles.page}>
      <h2>Alerts</h2>
      <ProblemBar error={error} />
      {loading && <Spinner size="tiny" label="Loading…" />}
      {data && (
        <>
          <h3>Rules</h3>
          <Table size="small" className={styles.table} aria-label="Alert rules">
            <TableHeader>
              <TableRow>
                <TableHeaderCell>Rule</TableHeaderCell>
                <TableHeaderCell>Metric</TableHeaderCell>
                <TableHeaderCell>Threshold</TableHeaderCell>
                <TableHeaderCell>Window</TableHeaderCell>
                <TableHeaderCell>Webhook</TableHeaderCell>
                <TableHeaderCell>State</TableHeaderCell>
              </TableRow>
            </TableHeader>
            <TableBody>
              {data.rules.map((r) => (
                <TableRow key={r.name}>
                  <TableCell>{r.name}</TableCell>
                  <TableCell>{r.metric}</TableCell>
                  <TableCell>{r.threshold}</TableCell>
                  <TableCell>{r.windowMinutes} min</TableCell>
                  <TableCell className={styles.mono}>{r.webhookUrl ?? ''}</TableCell>
                  <TableCell>{r.firing ? 'Firing' : 'Quiet'}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          {data.rules.length === 0 && <p className={styles.muted}>No alert rules.</p>}
          <h3>Firings</h3>
          <Table size="small" className={styles.table} aria-label="Alert firings">
            <TableHeader>
              <TableRow>
                <TableHeaderCell>Rule</TableHeaderCell>
                <TableHeaderCell>Metric</TableHeaderCell>
                <TableHeaderCell>Value</TableHeaderCell>
                <TableHeaderCell>Threshold</TableHeaderCell>
                <TableHeaderCell>Fired</TableHeaderCell>
                <TableHeaderCell>Resolved</TableHeaderCell>
                <TableHeaderCell>Webhook</TableHeaderCell>
              </TableRow>
            </TableHeader>
            <TableBody>
              {data.alerts.map((a) => (
                <TableRow key={`${a.rule}-${a.firedAt}`}>
                  <TableCell>{a.rule}</TableCell>
                  <TableCell>{a.metric}</TableCell>
                  <TableCell>{a.value}</TableCell>
                  <TableCell>{a.threshold}</TableCell>
                  <TableCell>{formatTime(a.firedAt)}</TableCell>
                  <TableCell>{a.resolvedAt ? formatTime(a.resolvedAt) : 'Firing'}</TableCell>
                  <TableCell>
                    {[deliveryText(a.delivery), deliveryText(a.resolutionDelivery)].filter(Boolean).join('; ')}
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          {data.alerts.length === 0 && <p className={styles.muted}>No alerts have fired.</p>}
        </>
      )}
    </div>
  );
}
