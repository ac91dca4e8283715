import {
  Badge,
  Button,
  Dialog,
  DialogActions,
  DialogBody,
  DialogContent,
  DialogSurface,
  DialogTitle,
  makeStyles,
  MessageBar,
  MessageBarBody,
  MessageBarTitle,
  tokens,
} from '@fluentui/react-components';
import { type ReactNode, useCallback, useEffect, useState } from 'react';

import { ApiError } from './api';

export const useStyles = makeStyles({
  page: { display: 'flex', flexDirection: 'column', gap: tokens.spacingVerticalM },
  row: { display: 'flex', flexWrap: 'wrap', gap: tokens.spacingHorizontalM, alignItems: 'end' },
  split: { display: 'grid', gridTemplateColumns: 'minmax(0, 3fr) minmax(0, 2fr)', gap: tokens.spacingHorizontalL },
  pane: {
    border: `1px solid ${tokens.colorNeutralStroke2}`,
    borderRadius: tokens.borderRadiusMedium,
    padding: tokens.spacingHorizontalM,
    backgroundColor: tokens.colorNeutralBackground1,
    display: 'flex',
    flexDirection: 'column',
    gap: tokens.spacingVerticalS,
    alignSelf: 'start',
  },
  facts: {
    display: 'grid',
    gridTemplateColumns: 'max-content 1fr',
    columnGap: tokens.spacingHorizontalM,
    rowGap: tokens.spacingVerticalXS,
    margin: 0,
    '& dt': { color: tokens.colorNeutralForeground3 },
    '& dd': { margin: 0, overflowWrap: 'anywhere' },
  },
  mono: { fontFamily: tokens.fontFamilyMonospace, fontSize: tokens.fontSizeBase200, overflowWrap: 'anywhere' },
  fieldName: { fontFamily: tokens.fontFamilyMonospace, fontSize: tokens.fontSizeBase200, whiteSpace: 'nowrap' },
  differs: { backgroundColor: tokens.colorPaletteYellowBackground2 },
  muted: { color: tokens.colorNeutralForeground3 },
  tableWrap: { overflowX: 'auto' },
  nowrap: { whiteSpace: 'nowrap' },
  // Columns as wide as their content (Fluent's tables default to equal, fixed columns).
  table: { tableLayout: 'auto' },
  check: { width: '2.5em' },
  wrap: { overflowWrap: 'anywhere' },
  narrow: { width: '110px' },
  medium: { width: '140px' },
  wide: { width: '190px' },
  fill: { width: '100%', minWidth: '8em' },
});

/** An API error as the problem's title and detail. */
export function ProblemBar({ error, onDismiss }: { error: unknown; onDismiss?: () => void }) {
  if (!error) return null;
  const title = error instanceof ApiError ? error.title : 'Something went wrong';
  const detail = error instanceof ApiError ? error.detail : String(error);
  return (
    <MessageBar intent="error" role="alert">
      <MessageBarBody>
        <MessageBarTitle>{title}</MessageBarTitle> {detail}
      </MessageBarBody>
      {onDismiss && (
        <Button appearance="transparent" size="small" onClick={onDismiss} aria-label="Dismiss error">
          Dismiss
        </Button>
      )}
    </MessageBar>
  );
}

export function Notice({
  intent = 'success',
  title,
  children,
}: {
  intent?: 'success' | 'info' | 'warning';
  title: string;
  children?: ReactNode;
}) {
  return (
    <MessageBar intent={intent} role="status">
      <MessageBarBody>
        <MessageBarTitle>{title}</MessageBarTitle> {children}
      </MessageBarBody>
    </MessageBar>
  );
}

/** Asks before a repair: what it will do, to which app. */
export function ConfirmDialog(props: {
  open: boolean;
  title: string;
  confirm: string;
  children: ReactNode;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  return (
    <Dialog open={props.open} onOpenChange={(_, data) => !data.open && props.onCancel()}>
      <DialogSurface aria-describedby={undefined}>
        <DialogBody>
          <DialogTitle>{props.title}</DialogTitle>
          <DialogContent>{props.children}</DialogContent>
          <DialogActions>
            <Button appearance="secondary" onClick={props.onCancel}>
              Cancel
            </Button>
            <Button appearance="primary" onClick={props.onConfirm}>
              {props.confirm}
            </Button>
          </DialogActions>
        </DialogBody>
      </DialogSurface>
    </Dialog>
  );
}

/** Loads data for the current inputs; `reload` fetches again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error: unknown) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

const STATUS_COLORS = { Synced: 'success', Failed: 'danger', Pending: 'warning', Processing: 'informative' } as const;

export function StatusBadge({ status }: { status: string }) {
  const color = STATUS_COLORS[status as keyof typeof STATUS_COLORS] ?? 'informative';
  return (
    <Badge appearance="tint" color={color}>
      {status}
    </Badge>
  );
}

export const formatTime = (iso: string | undefined) => {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime())
    ? iso
    : d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
};

export const formatValue = (value: unknown): string =>
  value === undefined || value === null ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);

export const formatDuration = (ms: number) => (ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`);

export const formatCounts = (counts: Record<string, number> | undefined) =>
  Object.entries(counts ?? {})
    .filter(([, n]) => n !== 0)
    .map(([name, n]) => `${name} ${n}`)
    .join(', ') || 'nothing';
