import {
  Button,
  createDOMRenderer,
  FluentProvider,
  makeStaticStyles,
  makeStyles,
  RendererProvider,
  Spinner,
  Tab,
  TabList,
  Text,
  tokens,
  webLightTheme,
} from '@fluentui/react-components';
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';

import { useTokenSource } from './api';
import { type Session, signIn } from './auth';
import { cspNonce, readConfig } from './config';
import { AlertsPage } from './pages/alerts';
import { DeadLettersPage } from './pages/dead-letters';
import { FailuresPage } from './pages/failures';
import { JobsPage } from './pages/jobs';
import { OperationsPage } from './pages/operations';
import { SyncErrorsPage } from './pages/sync-errors';
import { hrefOf, type Page, useRoute } from './router';
import { ProblemBar } from './ui';

const useGlobalStyles = makeStaticStyles({ body: { margin: 0 } });

const useShellStyles = makeStyles({
  header: {
    display: 'flex',
    alignItems: 'center',
    gap: tokens.spacingHorizontalL,
    padding: `${tokens.spacingVerticalS} ${tokens.spacingHorizontalL}`,
    backgroundColor: tokens.colorBrandBackground,
    color: tokens.colorNeutralForegroundOnBrand,
  },
  title: { fontWeight: tokens.fontWeightSemibold, fontSize: tokens.fontSizeBase400, margin: 0 },
  user: { marginLeft: 'auto', display: 'flex', alignItems: 'center', gap: tokens.spacingHorizontalS },
  nav: { padding: `0 ${tokens.spacingHorizontalL}`, borderBottom: `1px solid ${tokens.colorNeutralStroke2}` },
  main: {
    padding: tokens.spacingHorizontalL,
    backgroundColor: tokens.colorNeutralBackground2,
    minHeight: 'calc(100vh - 86px)',
    boxSizing: 'border-box',
  },
  center: { padding: tokens.spacingHorizontalXXL },
});

const TITLES: Record<Page, string> = {
  operations: 'Customer synchronization status',
  failures: 'Failures by cause',
  'sync-errors': 'Coupled data synchronization errors',
  jobs: 'Synchronization jobs',
  'dead-letters': 'Dead letters',
  alerts: 'Alerts',
};
const NAV: [Page, string][] = [
  ['operations', 'Operations'],
  ['failures', 'Failures'],
  ['sync-errors', 'Sync errors'],
  ['jobs', 'Jobs'],
  ['alerts', 'Alerts'],
  ['dead-letters', 'Dead letters'],
];

function Shell({ session }: { session: Session }) {
  const styles = useShellStyles();
  const route = useRoute();
  useEffect(() => {
    document.title = `${TITLES[route.page]} · Customer Sync`;
  }, [route.page]);
  const role = session.canRepair
    ? 'Operator'
    : session.roles.includes('Sync.Reader')
      ? 'Reader (read only)'
      : 'No operator role';
  const props = { session, params: route.params };
  return (
    <>
      <header className={styles.header}>
        <h1 className={styles.title}>Customer Sync</h1>
        <div className={styles.user}>
          <Text>
            {session.user} · {role}
          </Text>
          <Button size="small" onClick={() => void session.signOut()}>
            Sign out
          </Button>
        </div>
      </header>
      <nav className={styles.nav} aria-label="Pages">
        <TabList
          selectedValue={route.page}
          onTabSelect={(_, data) => (window.location.hash = hrefOf(data.value as Page))}
        >
          {NAV.map(([page, label]) => (
            <Tab key={page} value={page}>
              {label}
            </Tab>
          ))}
        </TabList>
      </nav>
      <main className={styles.main}>
        {route.page === 'operations' && <OperationsPage {...props} />}
        {route.page === 'failures' && <FailuresPage {...props} />}
        {route.page === 'sync-errors' && <SyncErrorsPage {...props} />}
        {route.page === 'jobs' && <JobsPage {...props} />}
        {route.page === 'dead-letters' && <DeadLettersPage {...props} />}
        {route.page === 'alerts' && <AlertsPage {...props} />}
      </main>
    </>
  );
}

function App() {
  useGlobalStyles();
  const styles = useShellStyles();
  const [state, setState] = useState<{ session?: Session; error?: unknown; done: boolean }>({ done: false });
  useEffect(() => {
    signIn(readConfig()).then(
      (session) => {
        if (session) useTokenSource(session.token);
        setState({ session, done: true });
      },
      (error: unknown) => setState({ error, done: true }),
    );
  }, []);
  if (!state.done) return <Spinner className={styles.center} label="Signing in…" />;
  if (state.error) return <ProblemBar error={state.error} />;
  if (!state.session) {
    return (
      <main className={styles.center}>
        <h1>Customer Sync console</h1>
        <p>
          Not signed in. Locally, open the link that <code>npm start</code> prints (it ends in <code>#token=…</code>); a
          token from <code>npm run --silent token -- Sync.Operator</code> works too.
        </p>
      </main>
    );
  }
  return <Shell session={state.session} />;
}

const renderer = createDOMRenderer(document, { styleElementAttributes: { nonce: cspNonce() } });
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <RendererProvider renderer={renderer} targetDocument={document}>
      <FluentProvider theme={webLightTheme}>
        <App />
      </FluentProvider>
    </RendererProvider>
  </StrictMode>,
);
