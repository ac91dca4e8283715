import {
  Button,
  Checkbox,
  Field,
  Input,
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
import { type FormEvent, useEffect, useState } from 'react';

import { api, download, get } from '../api';
import type { Session } from '../auth';
import { hrefOf, navigate } from '../router';
import type { OperationSummary, Page } from '../types';
import { ConfirmDialog, formatTime, Notice, ProblemBar, StatusBadge, useStyles } from '../ui';
import { OperationPane } from './operation-pane';

/** The filter keys GET /api/operations takes (besides field/value pairs), as the URL keeps them. */
const KEYS = ['channel', 'status', 'type', 'customerAccount', 'asyncCustomerAccount', 'from', 'to', 'code'] as const;
type Key = (typeof KEYS)[number];

/** The filter controls, in the order they are shown: a text, a choice or a time for each query key. */
const FILTERS: ({ key: Key; label: string } & (
  { kind: 'text'; width: 'narrow' | 'medium' } | { kind: 'choice'; options: string[] } | { kind: 'time' }
))[] = [
  { key: 'channel', label: 'Channel', kind: 'text', width: 'narrow' },
  { key: 'status', label: 'Status', kind: 'choice', options: ['Pending', 'Synced', 'Failed'] },
  { key: 'type', label: 'Type', kind: 'choice', options: ['Create', 'Update', 'Delete'] },
  { key: 'customerAccount', label: 'Customer account', kind: 'text', width: 'medium' },
  { key: 'asyncCustomerAccount', label: 'Async customer account', kind: 'text', width: 'medium' },
  { key: 'code', label: 'Error code', kind: 'text', width: 'medium' },
  { key: 'from', label: 'From', kind: 'time' },
  { key: 'to', label: 'To', kind: 'time' },
];
type Filter = Partial<Record<Key, string>> & { pairs: { field: string; value: string }[] };

function filterOf(params: URLSearchParams): Filter {
  const filter: Filter = { pairs: [] };
  for (const key of KEYS) {
    const value = params.get(key);
    if (value) filter[key] = value;
  }
  const fields = params.getAll('field');
  const values = params.getAll('value');
  fields.forEach((field, i) => filter.pairs.push({ field, value: values[i] ?? '' }));
  return filter;
}

/** The filter as query parameters (the API's and the URL's are the same). */
function queryOf(filter: Filter): URLSearchParams {
  const query = new URLSearchParams();
  for (const key of KEYS) if (filter[key]) query.set(key, filter[key]);
  for (const { field, value } of filter.pairs) {
    if (field.trim()) {
      query.append('field', field.trim());
      query.append('value', value);
    }
  }
  return query;
}

/** The body filter of a bulk resync: the same keys, field/value as one value or a list. */
function bodyFilterOf(filter: Filter): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const key of KEYS) if (filter[key]) body[key] = filter[key];
  const pairs = filter.pairs.filter((p) => p.field.trim());
  if (pairs.length > 0) {
    body.field = pairs.map((p) => p.field.trim());
    body.value = pairs.map((p) => p.value);
  }
  return body;
}

// datetime-local inputs show local time; the URL and the API carry ISO instants.
const toLocalInput = (iso: string | undefined) => {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};
const fromLocalInput = (local: string) => (local ? new Date(local).toISOString() : undefined);

export function OperationsPage({ session, params }: { session: Session; params: URLSearchParams }) {
  const styles = useStyles();
  const applied = filterOf(params);
  const query = queryOf(applied).toString();
  const selectedId = params.get('op') ?? undefined;
  const [draft, setDraft] = useState<Filter>(applied);
  const [items, setItems] = useState<OperationSummary[]>([]);
  const [next, setNext] = useState<string | undefined>();
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [bulk, setBulk] = useState<'selected' | 'all' | undefined>();
  // What the dialog says stays put while it closes (the selection is cleared at once).
  const [asked, setAsked] = useState<{ mode: 'selected' | 'all'; count: number }>({ mode: 'all', count: 0 });
  const ask = (mode: 'selected' | 'all') => {
    setAsked({ mode, count: selected.size });
    setBulk(mode);
  };
  const [notice, setNotice] = useState<{ title: string; text: string } | undefined>();
  const [tick, setTick] = useState(0);

  useEffect(() => setDraft(filterOf(new URLSearchParams(query))), [query]);

  useEffect(() => {
    let live = true;
    setLoading(true);
    setError(undefined);
    get<Page<OperationSummary>>(`/operations?${query}${query ? '&' : ''}top=50`).then(
      (page) => {
        if (!live) return;
        setItems(page.items);
        setNext(page.continuationToken);
        setLoading(false);
      },
      (e: unknown) => live && (setError(e), setItems([]), setNext(undefined), setLoading(false)),
    );
    return () => {
      live = false;
    };
  }, [query, tick]);

  const reload = () => setTick((t) => t + 1);
  const loadMore = async () => {
    if (!next) return;
    setLoading(true);
    try {
      const q = new URLSearchParams(query);
      q.set('top', '50');
      q.set('continuationToken', next);
      const page = await get<Page<OperationSummary>>(`/operations?${q.toString()}`);
      setItems((existing) => [...existing, ...page.items]);
      setNext(page.continuationToken);
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  };

  const withParams = (change: (p: URLSearchParams) => void) => {
    const p = new URLSearchParams(params);
    change(p);
    return p;
  };
  const apply = (event: FormEvent) => {
    event.preventDefault();
    setSelected(new Set());
    navigate('operations', queryOf(draft));
  };
  const open = (operationId: string | undefined) =>
    navigate(
      'operations',
      withParams((p) => (operationId ? p.set('op', operationId) : p.delete('op'))),
    );

  const resync = async () => {
    const body = bulk === 'all' ? { filter: bodyFilterOf(applied) } : { operationIds: [...selected] };
    setBulk(undefined);
    try {
      const { data } = await api<{ accepted: number; skipped: { operationId: string; reason: string }[] }>(
        'POST',
        '/operations/sync',
        { body },
      );
      const skipped = data.skipped.map((s) => `${s.operationId}: ${s.reason}`).join('; ');
      setNotice({
        title: `Resync accepted for ${data.accepted} operation${data.accepted === 1 ? '' : 's'}`,
        text: data.skipped.length ? `Skipped ${data.skipped.length}: ${skipped}` : 'None skipped.',
      });
      setSelected(new Set());
      reload();
    } catch (e) {
      setError(e);
    }
  };
  const exportCsv = async () => {
    try {
      await download(`/operations?${query}`, 'text/csv', 'operations.csv');
    } catch (e) {
      setError(e);
    }
  };

  const toggle = (id: string, on: boolean) =>
    setSelected((s) => {
      const copy = new Set(s);
      if (on) copy.add(id);
      else copy.delete(id);
      return copy;
    });
  const allOnPage = items.length > 0 && items.every((i) => selected.has(i.operationId));
  const set = (key: Key, value: string) => setDraft((d) => ({ ...d, [key]: value || undefined }));
  const setPair = (i: number, change: Partial<{ field: string; value: string }>) =>
    setDraft((d) => ({ ...d, pairs: d.pairs.map((p, j) => (j === i ? { ...p, ...change } : p)) }));

  return (
    <div className={styles.page}>
      <h2>Customer synchronization status</h2>
      <form className={styles.page} onSubmit={apply} aria-label="Filter operations">
        <div className={styles.row}>
          {FILTERS.map((f) => (
            <Field key={f.key} label={f.label}>
              {f.kind === 'choice' ? (
                <Select
                  value={draft[f.key] ?? ''}
                  onChange={(_, d) => set(f.key, d.value)}
                  size="small"
                  className={styles.narrow}
                >
                  <option value="">Any</option>
                  {f.options.map((o) => (
                    <option key={o}>{o}</option>
                  ))}
                </Select>
              ) : f.kind === 'time' ? (
                <Input
                  type="datetime-local"
                  value={toLocalInput(draft[f.key])}
                  onChange={(_, d) => set(f.key, fromLocalInput(d.value) ?? '')}
                  size="small"
                  className={styles.wide}
                />
              ) : (
                <Input
                  value={draft[f.key] ?? ''}
                  onChange={(_, d) => set(f.key, d.value)}
                  size="small"
                  className={styles[f.width]}
                />
              )}
            </Field>
          ))}
        </div>
        {draft.pairs.map((pair, i) => (
          <div className={styles.row} key={i}>
            <Field label={`Field ${i + 1}`}>
              <Input
                value={pair.field}
                placeholder="email, address.city, attributes.loyaltyTier"
                onChange={(_, d) => setPair(i, { field: d.value })}
                size="small"
              />
            </Field>
            <Field label={`Value ${i + 1}`}>
              <Input value={pair.value} onChange={(_, d) => setPair(i, { value: d.value })} size="small" />
            </Field>
            <Button
              size="small"
              aria-label={`Remove field filter ${i + 1}`}
              onClick={() => setDraft((d) => ({ ...d, pairs: d.pairs.filter((_, j) => j !== i) }))}
            >
              Remove
            </Button>
          </div>
        ))}
        <div className={styles.row}>
          <Button
            size="small"
            onClick={() => setDraft((d) => ({ ...d, pairs: [...d.pairs, { field: '', value: '' }] }))}
          >
            Add field filter
          </Button>
          <Button type="submit" appearance="primary" size="small">
            Apply filters
          </Button>
          <Button
            size="small"
            onClick={() => {
              setDraft({ pairs: [] });
              navigate('operations');
            }}
          >
            Clear filters
          </Button>
        </div>
      </form>

      <div className={styles.row} role="toolbar" aria-label="Operation actions">
        <Button size="small" onClick={reload}>
          Refresh
        </Button>
        <Button size="small" onClick={() => void exportCsv()}>
          Export CSV
        </Button>
        {session.canRepair && (
          <>
            <Button size="small" disabled={selected.size === 0} onClick={() => ask('selected')}>
              Resync selected ({selected.size})
            </Button>
            <Button size="small" onClick={() => ask('all')}>
              Resync all matching
            </Button>
          </>
        )}
      </div>
      <ProblemBar error={error} onDismiss={() => setError(undefined)} />
      {notice && <Notice title={notice.title}>{notice.text}</Notice>}
      <ConfirmDialog
        open={bulk !== undefined}
        title={
          asked.mode === 'all'
            ? 'Resync every matching operation?'
            : `Resync ${asked.count} operation${asked.count === 1 ? '' : 's'}?`
        }
        confirm="Resync"
        onCancel={() => setBulk(undefined)}
        onConfirm={() => void resync()}
      >
        {asked.mode === 'all'
          ? `Every Failed operation matching the current filter (${query || 'no filter'}) goes back to Pending and is applied to HQ again. Operations that are not Failed are skipped.`
          : 'The selected Failed operations go back to Pending and are applied to HQ again. Operations that are not Failed are skipped.'}
      </ConfirmDialog>

      <div className={selectedId ? styles.split : undefined}>
        <div className={styles.tableWrap}>
          <Table size="small" className={styles.table} aria-label="Operations">
            <TableHeader>
              <TableRow>
                {session.canRepair && (
                  <TableHeaderCell>
                    <Checkbox
                      aria-label="Select all operations on this page"
                      checked={allOnPage}
                      onChange={(_, d) => setSelected(d.checked ? new Set(items.map((i) => i.operationId)) : new Set())}
                    />
                  </TableHeaderCell>
                )}
                <TableHeaderCell>Operation</TableHeaderCell>
                {/* Second, so that it stays in view beside the detail pane. */}
                <TableHeaderCell>Sync status</TableHeaderCell>
                <TableHeaderCell>Channel</TableHeaderCell>
                <TableHeaderCell>Customer account</TableHeaderCell>
                <TableHeaderCell>Async customer account</TableHeaderCell>
                <TableHeaderCell>Operation timestamp</TableHeaderCell>
                <TableHeaderCell>Type</TableHeaderCell>
              </TableRow>
            </TableHeader>
            <TableBody>
              {items.map((op) => (
                <TableRow key={op.operationId} aria-selected={op.operationId === selectedId}>
                  {session.canRepair && (
                    <TableCell>
                      <Checkbox
                        aria-label={`Select ${op.operationId}`}
                        checked={selected.has(op.operationId)}
                        onChange={(_, d) => toggle(op.operationId, d.checked === true)}
                      />
                    </TableCell>
                  )}
                  <TableCell className={styles.nowrap}>
                    <Link
                      href={hrefOf(
                        'operations',
                        withParams((p) => p.set('op', op.operationId)),
                      )}
                    >
                      {op.operationId}
                    </Link>
                  </TableCell>
                  <TableCell>
                    <StatusBadge status={op.status} />
                  </TableCell>
                  <TableCell>{op.channel}</TableCell>
                  <TableCell>{op.customerAccount ?? ''}</TableCell>
                  <TableCell className={styles.nowrap}>{op.asyncCustomerAccount ?? ''}</TableCell>
                  <TableCell className={styles.nowrap}>{formatTime(op.operationTimestamp)}</TableCell>
                  <TableCell>{op.type}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          {loading && <Spinner size="tiny" label="Loading operations…" />}
          {!loading && items.length === 0 && !error && (
            <p className={styles.muted}>No operations match{next ? ' in the part searched so far' : ''}.</p>
          )}
          {next && (
            <Button size="small" onClick={() => void loadMore()} disabled={loading}>
              Load more
            </Button>
          )}
        </div>
        {selectedId && (
          <OperationPane
            key={selectedId}
            operationId={selectedId}
            session={session}
            onClose={() => open(undefined)}
            onChanged={reload}
          />
        )}
      </div>
    </div>
  );
}
