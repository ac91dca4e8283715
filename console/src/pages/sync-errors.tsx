import {
  Badge,
  Button,
  Field,
  Link,
  Select,
  Spinner,
  Table,
  TableBody,
  TableCell,
  TableHeader,
  TableHeaderCell,
  TableRow,
} from '@fluentui/react-components';
import { type ReactNode, useState } from 'react';

import { api, type ApiAnswer, ApiError, enc, get } from '../api';
import type { Session } from '../auth';
import { hrefOf, navigate } from '../router';
import type { Page, SyncError } from '../types';
import { ConfirmDialog, formatTime, formatValue, Notice, ProblemBar, useLoad, useStyles } from '../ui';

const KINDS = ['ModifiedInBoth', 'DeletedInCrm', 'DeletedInHq', 'MultipleMatches', 'Failed'];

/** The HQ fields that are synchronized, per CRM table (shared/domain/crm-mapping.ts). */
const FIELDS: Record<string, string[]> = {
  contacts: [
    'firstName',
    'lastName',
    'email',
    'phone',
    'address.street',
    'address.city',
    'address.postalCode',
    'address.countryRegion',
  ],
  accounts: [
    'organizationName',
    'email',
    'phone',
    'address.street',
    'address.city',
    'address.postalCode',
    'address.countryRegion',
  ],
};

const valueAt = (record: unknown, path: string): unknown =>
  path
    .split('.')
    .reduce<unknown>(
      (v, key) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined),
      record,
    );

interface Action {
  label: string;
  confirm: string;
  title: string;
  what: ReactNode;
  run: () => Promise<ApiAnswer<unknown>>;
}

/** The actions that fit an error, each saying what it will do to which app. */
function actionsOf(e: SyncError): Action[] {
  const base = `/sync-errors/${enc(e.customerAccount)}`;
  const row = `${e.crmTable}(${e.crmId})`;
  const hq = `HQ customer ${e.customerAccount}`;
  const fields = (e.differences ?? []).map((d) => d.field).join(', ');
  const actions: Action[] = [];
  for (const action of e.actions) {
    if (action === 'Synchronize') {
      actions.push({
        label: 'Use HQ version',
        confirm: 'Use HQ version',
        title: `Use the HQ version of ${e.customerAccount}?`,
        what: `HQ's values of ${fields || 'the differing fields'} are written to the CRM row ${row} now. ${hq} is not changed.`,
        run: () => api('POST', `${base}/synchronize`, { body: { use: 'hq', failedOn: e.failedOn } }),
      });
      actions.push({
        label: 'Use CRM version',
        confirm: 'Use CRM version',
        title: `Use the CRM version of ${e.customerAccount}?`,
        what: `The CRM row's values of ${fields || 'the differing fields'} are submitted to ${hq} as an operation from the channel crm. The CRM row ${row} is not changed.`,
        run: () => api('POST', `${base}/synchronize`, { body: { use: 'crm', failedOn: e.failedOn } }),
      });
    } else if (action === 'Retry') {
      actions.push({
        label: 'Retry',
        confirm: 'Retry',
        title: `Retry ${e.customerAccount}?`,
        what: `The error and its skipped flag are cleared; the next crm-sync run takes ${hq} and ${row} again. Neither app is changed now.`,
        run: () => api('POST', `${base}/retry`),
      });
    } else if (action === 'Restore') {
      actions.push({
        label: 'Restore records',
        confirm: 'Restore',
        title: `Restore ${e.customerAccount}?`,
        what: e.crmExists
          ? `${hq} is brought back under the same customer account from the CRM row ${row} (an operation from the channel crm), and the two stay coupled.`
          : `The CRM row ${row} is recreated in the CRM from ${hq} now, and the two stay coupled.`,
        run: () => api('POST', `${base}/restore`),
      });
    } else if (action === 'Delete') {
      actions.push({
        label: 'Delete records',
        confirm: 'Delete',
        title: `Delete ${e.customerAccount}?`,
        what: e.hqExists
          ? `${hq} is deleted in HQ (an HQ operation), and the coupling is removed. The CRM row is already gone.`
          : `The CRM row ${row} is deleted in the CRM, and the coupling is removed. The HQ customer is already deleted.`,
        run: () => api('POST', `${base}/delete`),
      });
    } else if (action === 'RemoveCoupling') {
      actions.push({
        label: 'Remove coupling',
        confirm: 'Remove coupling',
        title: `Remove the coupling of ${e.customerAccount}?`,
        what: `${hq} and the CRM row ${row} are no longer synchronized, and automatic matching leaves them alone. Neither record is changed.`,
        run: () => api('DELETE', `/couplings/${enc(e.customerAccount)}`),
      });
    }
  }
  return actions;
}

/** Coupled records that could not be synchronized, by kind; both versions, the fitting actions, log and coupling. */
export function SyncErrorsPage({ session, params }: { session: Session; params: URLSearchParams }) {
  const styles = useStyles();
  const kind = params.get('kind') ?? '';
  const account = params.get('account') ?? undefined;
  const [pages, setPages] = useState<SyncError[]>([]);
  const list = useLoad(async () => {
    const page = await get<Page<SyncError>>(`/sync-errors?top=100${kind ? `&kind=${enc(kind)}` : ''}`);
    setPages([]);
    return page;
  }, [kind]);
  const items = [...(list.data?.items ?? []), ...pages];
  const [next, setNext] = useState<string>();
  const token = next ?? list.data?.continuationToken;
  const [pending, setPending] = useState<Action | 'retry-all'>();
  const [error, setError] = useState<unknown>();
  const [notice, setNotice] = useState<string>();
  const [tick, setTick] = useState(0);

  const selected = items.find((i) => i.customerAccount === account);
  const link = (change: Record<string, string | undefined>) => {
    const p = new URLSearchParams(params);
    for (const [k, v] of Object.entries(change))
      if (v) p.set(k, v);
      else p.delete(k);
    return p;
  };

  const confirm = async () => {
    const action = pending;
    setPending(undefined);
    setError(undefined);
    setNotice(undefined);
    try {
      if (action === 'retry-all') {
        const { data } = await api<{ accepted: number }>('POST', '/sync-errors/retry', { body: kind ? { kind } : {} });
        setNotice(
          `Retry accepted for ${data.accepted} record${data.accepted === 1 ? '' : 's'}; the next crm-sync run takes them again.`,
        );
      } else if (action) {
        const { data } = await action.run();
        const operationId = (data as { operationId?: string } | undefined)?.operationId;
        setNotice(`${action.label}: done${operationId ? `; HQ operation ${operationId} is Pending` : ''}.`);
      }
    } catch (e) {
      setError(e);
    }
    // Whatever happened (a 409 SYNC_ERROR_CHANGED means the record changed since): show the list as it is now.
    setNext(undefined);
    list.reload();
    setTick((t) => t + 1);
  };
  const loadMore = async () => {
    if (!token) return;
    try {
      const page = await get<Page<SyncError>>(
        `/sync-errors?top=100&continuationToken=${enc(token)}${kind ? `&kind=${enc(kind)}` : ''}`,
      );
      setPages((p) => [...p, ...page.items]);
      setNext(page.continuationToken ?? '');
    } catch (e) {
      setError(e);
    }
  };

  return (
    <div className={styles.page}>
      <h2>Coupled data synchronization errors</h2>
      <div className={styles.row}>
        <Field label="Kind">
          <Select
            size="small"
            value={kind}
            onChange={(_, d) => navigate('sync-errors', d.value ? { kind: d.value } : {})}
          >
            <option value="">All kinds</option>
            {KINDS.map((k) => (
              <option key={k}>{k}</option>
            ))}
          </Select>
        </Field>
        <Button size="small" onClick={() => (setNext(undefined), list.reload())}>
          Refresh
        </Button>
        {session.canRepair && (
          <Button size="small" onClick={() => setPending('retry-all')} disabled={items.length === 0}>
            Retry all
          </Button>
        )}
      </div>
      <ProblemBar error={error ?? list.error} onDismiss={() => setError(undefined)} />
      {error instanceof ApiError && error.code === 'SYNC_ERROR_CHANGED' && (
        <Notice intent="info" title="Reloaded">
          The list below shows the records as they are now.
        </Notice>
      )}
      {notice && <Notice title={notice} />}
      <ConfirmDialog
        open={pending !== undefined}
        title={pending === 'retry-all' ? `Retry all ${kind || ''} errors?` : (pending?.title ?? '')}
        confirm={pending === 'retry-all' ? 'Retry all' : (pending?.confirm ?? '')}
        onCancel={() => setPending(undefined)}
        onConfirm={() => void confirm()}
      >
        {pending === 'retry-all'
          ? `Every open error${kind ? ` of kind ${kind}` : ''} is cleared, with its skipped flag; the next crm-sync run takes those records again. Neither app is changed now.`
          : pending?.what}
      </ConfirmDialog>

      <div className={account ? styles.split : undefined}>
        <div className={styles.tableWrap}>
          <Table size="small" className={styles.table} aria-label="Synchronization errors">
            <TableHeader>
              <TableRow>
                <TableHeaderCell>Customer account</TableHeaderCell>
                <TableHeaderCell>CRM table</TableHeaderCell>
                <TableHeaderCell>Kind</TableHeaderCell>
                <TableHeaderCell>Message</TableHeaderCell>
                <TableHeaderCell>Failed on</TableHeaderCell>
                <TableHeaderCell>Skipped</TableHeaderCell>
              </TableRow>
            </TableHeader>
            <TableBody>
              {items.map((e) => (
                <TableRow key={e.customerAccount} aria-selected={e.customerAccount === account}>
                  <TableCell>
                    <Link href={hrefOf('sync-errors', link({ account: e.customerAccount }))}>{e.customerAccount}</Link>
                  </TableCell>
                  <TableCell>{e.crmTable}</TableCell>
                  <TableCell>{e.kind}</TableCell>
                  <TableCell>{e.message}</TableCell>
                  <TableCell>{formatTime(e.failedOn)}</TableCell>
                  <TableCell>{e.skipped ? 'Yes' : 'No'}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          {list.loading && <Spinner size="tiny" label="Loading…" />}
          {!list.loading && items.length === 0 && !list.error && (
            <p className={styles.muted}>No synchronization errors.</p>
          )}
          {token && (
            <Button size="small" onClick={() => void loadMore()}>
              Load more
            </Button>
          )}
        </div>
        {account && (
          <section className={styles.pane} aria-label={`Record ${account}`}>
            <div className={styles.row}>
              <h3 style={{ margin: 0 }}>Record {account}</h3>
              <Button
                size="small"
                aria-label="Close record details"
                onClick={() => navigate('sync-errors', link({ account: undefined }))}
              >
                Close
              </Button>
            </div>
            {selected ? (
              <>
                <p>
                  <Badge appearance="tint" color="danger">
                    {selected.kind}
                  </Badge>{' '}
                  {selected.message}
                </p>
                {selected.kind === 'ModifiedInBoth' && <Versions error={selected} />}
                {session.canRepair && (
                  <div className={styles.row} role="group" aria-label="Actions">
                    {actionsOf(selected).map((a) => (
                      <Button key={a.label} size="small" onClick={() => setPending(a)}>
                        {a.label}
                      </Button>
                    ))}
                  </div>
                )}
              </>
            ) : (
              <p className={styles.muted}>This record has no open synchronization error.</p>
            )}
            <RecordLog account={account} tick={tick} />
          </section>
        )}
      </div>
    </div>
  );
}

/** A ModifiedInBoth record's two versions side by side, the differing fields highlighted. */
function Versions({ error }: { error: SyncError }) {
  const styles = useStyles();
  const customer = useLoad(
    async () =>
      error.hqExists
        ? (await get<{ customer: unknown }>(`/customers/${enc(error.customerAccount)}`)).customer
        : undefined,
    [error.customerAccount, error.failedOn],
  );
  const differences = new Map((error.differences ?? []).map((d) => [d.field, d]));
  const fields = [...new Set([...(FIELDS[error.crmTable] ?? []), ...differences.keys()])];
  return (
    <Table size="small" className={styles.table} aria-label="Both versions">
      <TableHeader>
        <TableRow>
          <TableHeaderCell>Field</TableHeaderCell>
          <TableHeaderCell>HQ version</TableHeaderCell>
          <TableHeaderCell>CRM version</TableHeaderCell>
        </TableRow>
      </TableHeader>
      <TableBody>
        {fields.map((field) => {
          const d = differences.get(field);
          const hq = d ? d.hqValue : valueAt(customer.data, field);
          return (
            <TableRow key={field} className={d ? styles.differs : undefined}>
              <TableCell className={styles.fieldName}>
                {field}
                {d && <strong> (differs)</strong>}
              </TableCell>
              <TableCell className={styles.wrap}>{formatValue(hq)}</TableCell>
              <TableCell className={styles.wrap}>{formatValue(d ? d.crmValue : hq)}</TableCell>
            </TableRow>
          );
        })}
      </TableBody>
    </Table>
  );
}

interface LogEntry {
  at: string;
  job?: string;
  direction: string;
  result: string;
  detail: string;
  fields?: { name: string; oldValue: unknown; newValue: unknown }[];
}
interface Coupling {
  crmTable: string;
  crmId: string;
  coupledAt: string;
  lastSyncedAt?: string;
  lastSyncResult?: string;
  skipped: boolean;
}

/** A record's coupling and its synchronization log. */
function RecordLog({ account, tick }: { account: string; tick: number }) {
  const styles = useStyles();
  const coupling = useLoad(async () => {
    try {
      return await get<Coupling>(`/couplings/${enc(account)}`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  }, [account, tick]);
  const log = useLoad(() => get<{ items: LogEntry[] }>(`/customers/${enc(account)}/sync-log?top=50`), [account, tick]);
  return (
    <>
      <h4 style={{ margin: 0 }}>Coupling</h4>
      <ProblemBar error={coupling.error} />
      {coupling.data === null && <p className={styles.muted}>Not coupled.</p>}
      {coupling.data && (
        <dl className={styles.facts}>
          <dt>CRM record</dt>
          <dd className={styles.mono}>
            {coupling.data.crmTable}({coupling.data.crmId})
          </dd>
          <dt>Coupled</dt>
          <dd>{formatTime(coupling.data.coupledAt)}</dd>
          <dt>Last synchronized</dt>
          <dd>
            {coupling.data.lastSyncedAt ? formatTime(coupling.data.lastSyncedAt) : '—'}{' '}
            {coupling.data.lastSyncResult ?? ''}
          </dd>
          <dt>Skipped</dt>
          <dd>{coupling.data.skipped ? 'Yes' : 'No'}</dd>
        </dl>
      )}
      <h4 style={{ margin: 0 }}>Synchronization log</h4>
      <ProblemBar error={log.error} />
      <Table size="small" className={styles.table} aria-label="Synchronization log">
        <TableHeader>
          <TableRow>
            <TableHeaderCell>At</TableHeaderCell>
            <TableHeaderCell>Direction</TableHeaderCell>
            <TableHeaderCell>Result</TableHeaderCell>
            <TableHeaderCell>Detail</TableHeaderCell>
          </TableRow>
        </TableHeader>
        <TableBody>
          {log.data?.items.map((entry, i) => (
            <TableRow key={i}>
              <TableCell>{formatTime(entry.at)}</TableCell>
              <TableCell>{entry.direction === 'ToCrm' ? 'HQ → CRM' : 'CRM → HQ'}</TableCell>
              <TableCell>{entry.result}</TableCell>
              <TableCell>
                {entry.detail}
                {entry.fields?.length ? (
                  <span className={styles.muted}>
                    {' '}
                    (
                    {entry.fields
                      .map((f) => `${f.name}: ${formatValue(f.oldValue)} → ${formatValue(f.newValue)}`)
                      .join('; ')}
                    )
                  </span>
                ) : null}
              </TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
      {log.data && log.data.items.length === 0 && <p className={styles.muted}>Nothing synchronized yet.</p>}
    </>
  );
}
