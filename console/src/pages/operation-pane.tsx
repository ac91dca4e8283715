import {
  Button,
  Input,
  Spinner,
  Table,
  TableBody,
  TableCell,
  TableHeader,
  TableHeaderCell,
  TableRow,
} from '@fluentui/react-components';
import { useEffect, useState } from 'react';

import { api, ApiError, enc } from '../api';
import type { Session } from '../auth';
import type { OperationDetail } from '../types';
import { formatTime, formatValue, Notice, ProblemBar, StatusBadge, useStyles } from '../ui';

/** An edited text back to the attribute's kind of value: numbers and booleans stay so, empty removes it. */
function parseEdit(text: string, original: unknown): unknown {
  if (text === '') return null;
  if (typeof original === 'number' && text.trim() !== '' && Number.isFinite(Number(text))) return Number(text);
  if (typeof original === 'boolean' && /^(true|false)$/i.test(text)) return text.toLowerCase() === 'true';
  return text;
}

/**
 * The detail pane of one operation: its facts, last known error, history and attribute grid. The new values of a
 * Failed operation are edited in place and saved with the ETag they were read with (a 412 means someone else
 * changed it meanwhile), then synced.
 */
export function OperationPane(props: {
  operationId: string;
  session: Session;
  onClose: () => void;
  onChanged: () => void;
}) {
  const styles = useStyles();
  const { operationId, session } = props;
  const [op, setOp] = useState<OperationDetail>();
  const [etag, setEtag] = useState<string | null>(null);
  const [edits, setEdits] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>();
  const [notice, setNotice] = useState<string>();
  const [stale, setStale] = useState(false);
  const [busy, setBusy] = useState(false);

  const load = async () => {
    const answer = await api<OperationDetail>('GET', `/operations/${enc(operationId)}`);
    setOp(answer.data);
    setEtag(answer.etag);
    return answer.data;
  };
  useEffect(() => {
    load().catch(setError);
  }, [operationId]);

  const editable = session.canRepair && op?.status === 'Failed';
  const changed = op
    ? Object.fromEntries(
        op.attributes
          .filter((a) => edits[a.name] !== undefined && edits[a.name] !== formatValue(a.newValue))
          .map((a) => [a.name, parseEdit(edits[a.name]!, a.newValue)]),
      )
    : {};
  const dirty = Object.keys(changed).length > 0;

  const run = async (what: () => Promise<void>) => {
    setBusy(true);
    setError(undefined);
    setNotice(undefined);
    try {
      await what();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const save = () =>
    run(async () => {
      try {
        const answer = await api<OperationDetail>('PATCH', `/operations/${enc(operationId)}`, {
          body: { attributes: changed },
          headers: { 'If-Match': etag ?? '' },
        });
        setEdits({});
        setStale(false);
        setNotice('Saved. Sync the operation to apply it to HQ.');
        if (answer.data?.attributes) {
          setOp(answer.data);
          setEtag(answer.etag);
        } else await load();
        props.onChanged();
      } catch (e) {
        if (e instanceof ApiError && e.status === 412) setStale(true);
        throw e;
      }
    });
  const sync = () =>
    run(async () => {
      await api('POST', `/operations/${enc(operationId)}/sync`);
      setNotice('Sent to HQ again.');
      // Applying takes a moment: show the outcome when it is there.
      const deadline = Date.now() + 15_000;
      let now = await load();
      while (now.status === 'Pending' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 400));
        now = await load();
      }
      setNotice(now.status === 'Synced' ? 'Synced to HQ.' : `Now ${now.status}.`);
      props.onChanged();
    });
  const reload = () =>
    run(async () => {
      setEdits({});
      setStale(false);
      await load();
    });

  return (
    <section className={styles.pane} aria-label={`Operation ${operationId}`}>
      <div className={styles.row}>
        <h3 style={{ margin: 0 }}>Operation {operationId}</h3>
        <Button size="small" onClick={props.onClose} aria-label="Close operation details">
          Close
        </Button>
      </div>
      <ProblemBar error={error} />
      {stale && (
        <Notice intent="warning" title="Someone else changed this operation">
          Your edits were not saved. Reload to see the current values, then edit again.{' '}
          <Button size="small" onClick={() => void reload()}>
            Reload
          </Button>
        </Notice>
      )}
      {notice && <Notice title={notice} />}
      {!op && !error && <Spinner size="tiny" label="Loading…" />}
      {op && (
        <>
          <dl className={styles.facts}>
            <dt>Customer account</dt>
            <dd>{op.customerAccount ?? '—'}</dd>
            <dt>Async customer account</dt>
            <dd>{op.asyncCustomerAccount ?? '—'}</dd>
            <dt>Channel</dt>
            <dd>{op.channel}</dd>
            <dt>Operation type</dt>
            <dd>{op.type}</dd>
            <dt>Status</dt>
            <dd>
              <StatusBadge status={op.status} />
            </dd>
            <dt>Operation timestamp</dt>
            <dd>{formatTime(op.operationTimestamp)}</dd>
            <dt>Last known error</dt>
            <dd>
              {op.lastError ? `${op.lastError.code}: ${op.lastError.message} (${formatTime(op.lastError.at)})` : '—'}
            </dd>
            <dt>Change description</dt>
            <dd>{op.changeDescription}</dd>
            {op.waitingOn && (
              <>
                <dt>Waiting on</dt>
                <dd>{op.waitingOn}</dd>
              </>
            )}
            <dt>Attempts</dt>
            <dd>{op.attempts}</dd>
          </dl>

          <h4 style={{ margin: 0 }}>Attributes</h4>
          <Table size="small" className={styles.table} aria-label="Attributes">
            <TableHeader>
              <TableRow>
                <TableHeaderCell>Attribute</TableHeaderCell>
                <TableHeaderCell>Old value</TableHeaderCell>
                <TableHeaderCell>New value</TableHeaderCell>
              </TableRow>
            </TableHeader>
            <TableBody>
              {op.attributes.map((a) => (
                <TableRow key={a.name}>
                  <TableCell className={styles.fieldName}>{a.name}</TableCell>
                  <TableCell className={styles.wrap}>{formatValue(a.oldValue)}</TableCell>
                  <TableCell>
                    {editable ? (
                      <Input
                        size="small"
                        className={styles.fill}
                        aria-label={`New value of ${a.name}`}
                        value={edits[a.name] ?? formatValue(a.newValue)}
                        onChange={(_, d) => setEdits((e) => ({ ...e, [a.name]: d.value }))}
                      />
                    ) : (
                      formatValue(a.newValue)
                    )}
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          {session.canRepair && op.status === 'Failed' && (
            <div className={styles.row}>
              <Button appearance="primary" size="small" disabled={!dirty || busy} onClick={() => void save()}>
                Save
              </Button>
              <Button size="small" disabled={dirty || busy} onClick={() => void sync()}>
                Sync
              </Button>
              {busy && <Spinner size="tiny" />}
            </div>
          )}

          <h4 style={{ margin: 0 }}>History</h4>
          <Table size="small" className={styles.table} aria-label="History">
            <TableHeader>
              <TableRow>
                <TableHeaderCell>At</TableHeaderCell>
                <TableHeaderCell>Status</TableHeaderCell>
                <TableHeaderCell>Detail</TableHeaderCell>
                <TableHeaderCell>By</TableHeaderCell>
              </TableRow>
            </TableHeader>
            <TableBody>
              {op.history.map((h, i) => (
                <TableRow key={i}>
                  <TableCell>{formatTime(h.at)}</TableCell>
                  <TableCell>{h.status}</TableCell>
                  <TableCell>{h.detail}</TableCell>
                  <TableCell>{h.by ?? ''}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </>
      )}
    </section>
  );
}
