import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DevDataverse, startDevDataverse } from '../../local/dataverse';
import { person, uniqueName } from '../support';
import { eventually, type Stack, startStack } from './stack';

/**
 * The operator console (console/, served at /api/console/) in headless Chromium against the real stack with a
 * development Dataverse of its own, used as an operator would: every control is found by its accessible name.
 * Screenshots of each page at 1280×800 go to test-results/screenshots/ (git-ignored) for a reviewer to look at.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(
    `Chromium is not installed (${CHROMIUM} is missing): the operator console's browser tests are SKIPPED. ` +
      'Install it with `apt-get install chromium` (.ci/run does).',
  );
}
const SCREENSHOTS = join(__dirname, '..', '..', 'test-results', 'screenshots');

let stack: Stack;
let crm: DevDataverse;
let browser: Browser | undefined;

beforeAll(async () => {
  crm = await startDevDataverse({ port: 0 });
  stack = await startStack({ DATAVERSE_URL: crm.url });
  if (hasChromium) {
    mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
      ],
    });
  }
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  await crm?.close();
});

const operator = () => stack.token('Sync.Operator');
const web = () => stack.token('Channel', 'web');

async function get<T = any>(path: string): Promise<T> {
  const response = await stack.call('GET', path, { token: operator() });
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as T;
}

/** A create through the channel API, waited for until it is `status`. */
async function submitted(customer: unknown, status: 'Synced' | 'Failed') {
  const response = await stack.call('POST', '/channels/web/customers', { token: web(), body: customer });
  expect(response.status).toBe(202);
  const { operationId } = (await response.json()) as { operationId: string };
  return eventually(
    async () => {
      const op = await get(`/operations/${operationId}`);
      return op.status === status ? op : undefined;
    },
    10_000,
    `${operationId} to be ${status}`,
  );
}

/** Opens the console with the sign-in link `npm start` prints, for a user with `role`; fails on any page error. */
async function signedIn(role: 'Sync.Operator' | 'Sync.Reader', route = ''): Promise<Page> {
  const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/status of 404/.test(message.text())) problems.push(message.text());
  });
  (page as Page & { problems: string[] }).problems = problems;
  await page.goto(`${stack.baseUrl}/console/#token=${stack.token(role)}`);
  await expect.poll(() => page.url()).not.toContain('#token=');
  if (route) await page.goto(`${stack.baseUrl}/console/${route}`);
  return page;
}
const problemsOf = (page: Page) => (page as Page & { problems: string[] }).problems;

/** Waits until the operations table lists `n` operations, refreshing it (a listing's index entry comes a moment after its operation). */
async function listsOperations(page: Page, n: number) {
  const rows = page.getByRole('table', { name: 'Operations' }).getByRole('row');
  await eventually(
    async () => {
      if ((await rows.count()) === n + 1) return true;
      await page.getByRole('button', { name: 'Refresh' }).click();
      await new Promise((resolve) => setTimeout(resolve, 300));
      return undefined;
    },
    10_000,
    `${n} operations listed`,
  );
}

async function screenshot(page: Page, name: string) {
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

describe('the console is served as a page, not an API endpoint', () => {
  it('answers without a token, with a strict CSP, no-cache for the page and immutable hashed assets', async () => {
    const bare = await fetch(`${stack.baseUrl}/console`, { redirect: 'manual' });
    expect(bare.status).toBe(308);
    expect(bare.headers.get('location')).toBe('/api/console/');

    const page = await fetch(`${stack.baseUrl}/console/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
    expect(csp).toContain("frame-ancestors 'none'");
    const html = await page.text();
    const nonce = /style-src 'self' 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(html).toContain(`content="${nonce}"`);
    expect(html).not.toMatch(/<script>/);
    const bundle = /src="\.\/(assets\/console-[A-Z0-9]+\.js)"/.exec(html)?.[1];
    expect(bundle).toBeDefined();

    const asset = await fetch(`${stack.baseUrl}/console/${bundle}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await fetch(`${stack.baseUrl}/console/assets/nothing.js`)).status).toBe(404);
    expect((await fetch(`${stack.baseUrl}/console/..%2Fhost.json`)).status).toBe(404);

    const document = (await (await fetch(`${stack.baseUrl}/openapi.json`)).json()) as { paths: object };
    expect(Object.keys(document.paths).some((path) => path.includes('console'))).toBe(false);
  });
});

describe.skipIf(!hasChromium)('the operator console in headless Chromium', () => {
  it('finds a failed operation by a field value, fixes it in the grid, saves, syncs and sees it Synced', async () => {
    const email = `${uniqueName('fix')}@example.dk`;
    const failed = await submitted(person({ email, customerGroup: 'Retial' }), 'Failed');

    const page = await signedIn('Sync.Operator');
    await page.getByLabel('Status').selectOption('Failed');
    await page.getByRole('button', { name: 'Add field filter' }).click();
    await page.getByRole('textbox', { name: 'Field 1' }).fill('email');
    await page.getByRole('textbox', { name: 'Value 1' }).fill(email);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect
      .poll(() => decodeURIComponent(page.url()))
      .toContain(`#/operations?status=Failed&field=email&value=${email}`);

    const operations = page.getByRole('table', { name: 'Operations' });
    await listsOperations(page, 1);
    await operations.getByRole('link', { name: failed.operationId }).click();
    const pane = page.getByRole('region', { name: `Operation ${failed.operationId}` });
    await pane.getByText('CUSTOMER_GROUP_NOT_FOUND', { exact: false }).waitFor();
    await pane.getByRole('textbox', { name: 'New value of customerGroup' }).fill('Retail');
    await screenshot(page, 'operations');
    await pane.getByRole('button', { name: 'Save' }).click();
    await pane.getByText('Saved.', { exact: false }).waitFor();
    await pane.getByRole('button', { name: 'Sync' }).click();
    await pane.getByText('Synced to HQ.').waitFor({ timeout: 15_000 });
    await expect.poll(() => pane.getByText('Synced', { exact: true }).count()).toBeGreaterThan(0);
    expect((await get(`/operations/${failed.operationId}`)).status).toBe('Synced');
    expect(problemsOf(page)).toEqual([]);
  });

  it('a stale ETag tells the operator that someone else changed the operation', async () => {
    const failed = await submitted(person({ customerGroup: 'Retial' }), 'Failed');
    const page = await signedIn('Sync.Operator', `#/operations?status=Failed&op=${failed.operationId}`);
    const pane = page.getByRole('region', { name: `Operation ${failed.operationId}` });
    const input = pane.getByRole('textbox', { name: 'New value of customerGroup' });
    await input.waitFor();

    // Another operator saves first.
    const read = await stack.call('GET', `/operations/${failed.operationId}`, { token: operator() });
    const other = await stack.call('PATCH', `/operations/${failed.operationId}`, {
      token: operator(),
      headers: { 'If-Match': read.headers.get('etag')! },
      body: { attributes: { customerGroup: 'Wholesale' } },
    });
    expect(other.status).toBe(200);

    await input.fill('Retail');
    await pane.getByRole('button', { name: 'Save' }).click();
    await pane.getByText('Someone else changed this operation').waitFor();
    await pane.getByText('The resource changed').waitFor(); // the problem's title
    await pane.getByRole('button', { name: 'Reload' }).click();
    await expect.poll(() => input.inputValue()).toBe('Wholesale');
  });

  it('resyncs a selection and everything matching a filter', async () => {
    const city = uniqueName('Bulkby');
    const address = { street: 'Torvet 1', city, postalCode: '8000', countryRegion: 'DK' };
    const ops = [
      await submitted(person({ address, customerGroup: 'Retial' }), 'Failed'),
      await submitted(person({ address, customerGroup: 'Retial' }), 'Failed'),
    ];
    const page = await signedIn('Sync.Operator', `#/operations?field=address.city&value=${city}`);
    await listsOperations(page, 2);
    for (const op of ops) await page.getByRole('checkbox', { name: `Select ${op.operationId}` }).check();
    await page.getByRole('button', { name: 'Resync selected (2)' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Resync' }).click();
    await page.getByText('Resync accepted for 2 operations').waitFor();

    await eventually(
      async () => {
        const all = await Promise.all(ops.map((op) => get(`/operations/${op.operationId}`)));
        return all.every((o) => o.status === 'Failed' && o.attempts > 1) || undefined;
      },
      10_000,
      'both to have been tried again',
    );
    await page.getByRole('button', { name: 'Resync all matching' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Resync' }).click();
    await page.getByText('Resync accepted for 2 operations').waitFor();
    await screenshot(page, 'operations-bulk');
  });

  it('failures are grouped by cause, each group linking to its filtered list', async () => {
    const page = await signedIn('Sync.Operator', '#/failures');
    const groups = page.getByRole('table', { name: 'Failures by cause' });
    await groups.getByRole('link', { name: 'CUSTOMER_GROUP_NOT_FOUND' }).click();
    await expect.poll(() => page.url()).toContain('#/operations?status=Failed&code=CUSTOMER_GROUP_NOT_FOUND');
    await page.getByRole('table', { name: 'Operations' }).getByRole('link').first().waitFor();
    await page.goto(`${stack.baseUrl}/console/#/failures`);
    await groups.getByRole('link').first().waitFor();
    await screenshot(page, 'failures');
  });

  it('settles a ModifiedInBoth error by choosing the CRM version', async () => {
    await syncRun(); // the first run only starts change tracking
    const op = await submitted(person({ phone: '+45 1111 1111' }), 'Synced');
    const account = op.customerAccount as string;
    await syncRun();
    const { crmId } = await get(`/couplings/${account}`);
    const edit = await stack.call('PATCH', `/channels/web/customers/${account}`, {
      token: web(),
      body: { phone: '+45 2222 2222' },
    });
    expect(edit.status).toBe(202);
    await eventually(async () => (await get(`/customers/${account}`)).customer.phone === '+45 2222 2222' || undefined);
    await crmRequest('PATCH', `contacts(${crmId})`, { telephone1: '+45 3333 3333' });
    await syncRun();

    const page = await signedIn('Sync.Operator', '#/sync-errors?kind=ModifiedInBoth');
    await page.getByRole('table', { name: 'Synchronization errors' }).getByRole('link', { name: account }).click();
    const record = page.getByRole('region', { name: `Record ${account}` });
    const versions = record.getByRole('table', { name: 'Both versions' });
    const phone = versions.getByRole('row', { name: /phone/ });
    await expect.poll(() => phone.textContent()).toContain('(differs)');
    expect(await phone.textContent()).toContain('+45 2222 2222');
    expect(await phone.textContent()).toContain('+45 3333 3333');
    await record.getByRole('table', { name: 'Synchronization log' }).getByRole('row').nth(1).waitFor();
    await screenshot(page, 'sync-errors');

    await record.getByRole('button', { name: 'Use CRM version' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText(`submitted to HQ customer ${account}`, { exact: false }).waitFor();
    await dialog.getByRole('button', { name: 'Use CRM version' }).click();
    await page.getByText('Use CRM version: done', { exact: false }).waitFor();
    await eventually(
      async () => (await get(`/customers/${account}`)).customer.phone === '+45 3333 3333' || undefined,
      10_000,
      'the CRM phone in HQ',
    );
    await record.getByText('This record has no open synchronization error.').waitFor();
    expect(problemsOf(page)).toEqual([]);
  });

  it('runs a job and reads its counts per direction', async () => {
    await submitted(person(), 'Synced');
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the feed holds back its last second
    const page = await signedIn('Sync.Operator', '#/jobs');
    await page.getByRole('button', { name: 'Run crm-sync now' }).click();
    await page.getByText(/crm-sync finished in/).waitFor({ timeout: 20_000 });
    const [latest] = (await get('/jobs')).items.filter((r: { job: string }) => r.job === 'crm-sync');
    expect(latest.directions.ToCrm.inserted).toBeGreaterThanOrEqual(1);
    const row = page.getByRole('table', { name: 'Job runs' }).getByRole('row').nth(1);
    await expect.poll(() => row.textContent()).toContain(`inserted ${latest.directions.ToCrm.inserted}`);
    await screenshot(page, 'jobs');
  });

  it('shows dead letters, and an alert rule that fired with its webhook delivery', async () => {
    const page = await signedIn('Sync.Operator', '#/dead-letters');
    await page.getByRole('table', { name: 'Dead letters' }).waitFor();
    await screenshot(page, 'dead-letters');

    // A rule on failed operations fires at the next alerts run. Its webhook points at a port nothing listens on,
    // so the delivery is shown waiting for its retry.
    await submitted(person({ customerGroup: 'NoSuchGroup' }), 'Failed');
    const rule = await stack.call('PUT', '/alert-rules/failures', {
      token: operator(),
      body: { metric: 'failedOperations', threshold: 1, windowMinutes: 60, webhookUrl: 'http://127.0.0.1:9/hook' },
    });
    expect(rule.status, await rule.clone().text()).toBe(200);
    await page.getByRole('tab', { name: 'Jobs' }).click();
    await page.getByRole('button', { name: 'Run alerts now' }).click();
    await page.getByText(/alerts finished in/).waitFor();

    await page.getByRole('tab', { name: 'Alerts' }).click();
    await expect.poll(() => page.url()).toContain('#/alerts');
    const rules = page.getByRole('table', { name: 'Alert rules' });
    await expect.poll(() => rules.getByRole('row', { name: /failures/ }).textContent()).toContain('Firing');
    const firings = page.getByRole('table', { name: 'Alert firings' });
    await expect
      .poll(() => firings.getByRole('row', { name: /failures/ }).textContent())
      .toMatch(/failedOperations.*Firing.*Pending \(1 attempts/);
    await screenshot(page, 'alerts');
  });

  it('works from the keyboard alone: tab to a control, press Enter, confirm a dialog, Escape closes it', async () => {
    const page = await signedIn('Sync.Operator', '#/jobs');
    await page.getByRole('table', { name: 'Job runs' }).waitFor();
    const focused = () => page.evaluate('document.activeElement && document.activeElement.getAttribute("aria-label")');
    // Tab from the top of the page to the first Run now button.
    for (let i = 0; i < 40 && (await focused()) !== 'Run sync-pending-operations now'; i++)
      await page.keyboard.press('Tab');
    expect(await focused()).toBe('Run sync-pending-operations now');
    await page.keyboard.press('Enter');
    await page.getByText(/sync-pending-operations finished in/).waitFor();

    await page.goto(`${stack.baseUrl}/console/#/operations?status=Failed`);
    await page.getByRole('button', { name: 'Resync all matching' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').getByText('Resync every matching operation?').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
  });

  it('a reader sees no repair controls', async () => {
    const failed = await submitted(person({ customerGroup: 'Retial' }), 'Failed');
    const page = await signedIn('Sync.Reader', `#/operations?status=Failed&op=${failed.operationId}`);
    await page.getByText('Reader (read only)', { exact: false }).waitFor();
    const pane = page.getByRole('region', { name: `Operation ${failed.operationId}` });
    await pane.getByText('CUSTOMER_GROUP_NOT_FOUND', { exact: false }).waitFor();
    expect(await pane.getByRole('textbox').count()).toBe(0);
    expect(await page.getByRole('button', { name: /^(Save|Sync|Resync)/ }).count()).toBe(0);
    expect(await page.getByRole('checkbox').count()).toBe(0);
    await screenshot(page, 'reader-operations');

    await page.getByRole('tab', { name: 'Sync errors' }).click();
    await page.getByRole('table', { name: 'Synchronization errors' }).waitFor();
    expect(await page.getByRole('button', { name: 'Retry all' }).count()).toBe(0);
    await page.getByRole('tab', { name: 'Jobs' }).click();
    await page.getByRole('table', { name: 'Job runs' }).waitFor();
    expect(await page.getByRole('button', { name: /Run .* now/ }).count()).toBe(0);
    expect(problemsOf(page)).toEqual([]);
  });
});

/** One crm-sync run through the API (the feed holds back its last second, so that is waited out). */
async function syncRun() {
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const response = await stack.call('POST', '/jobs/crm-sync/run', { token: operator() });
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as { counts: Record<string, number> };
}

/** What a CRM user does: a request to the development Dataverse's Web API. */
async function crmRequest(method: string, path: string, body?: unknown) {
  const response = await fetch(`${crm.apiUrl}${path}`, {
    method,
    headers: { Authorization: 'Bearer crm-user', 'Content-Type': 'application/json', 'If-Match': '*' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  expect(response.status, await response.clone().text()).toBeLessThan(300);
}
