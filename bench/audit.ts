/**
 * Audit query latency at scale. Loads N operations straight into storage through the project's own storage
 * code (the same entities a submit and the processor write), then times each filter kind over HTTP against a
 * running stack (`npm start`).
 * Usage: npx tsx bench/audit.ts [operations=100000] [baseUrl=http://localhost:7071/api] [--query-only]
 * --query-only skips loading and samples targets from what the stack already holds.
 */
import { randomBytes } from 'node:crypto';

import { localSettings } from '../local/settings';
import { flatten } from '../shared/domain/changes';
import type { Customer } from '../shared/domain/customer';
import { type CustomerRecord, type Operation, operationIdOf } from '../shared/domain/operation';
import { signDevToken } from '../shared/http/auth';
import { createStore } from '../shared/storage';
import { formatAccount } from '../shared/storage/accounts';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const queryOnly = process.argv.includes('--query-only');
const count = Number(args[0] ?? 100_000);
const baseUrl = args[1] ?? 'http://localhost:7071/api';
const settings = localSettings();
const store = createStore(settings.STORAGE_CONNECTION_STRING!, settings.TABLE_PREFIX ?? '');
const CHANNELS = ['web', ...Array.from({ length: 9 }, (_, i) => `pos-00${i + 1}`)];
const CITIES = [
  'Aarhus',
  'Odense',
  'Aalborg',
  'Esbjerg',
  'Randers',
  'Kolding',
  'Horsens',
  'Vejle',
  'Roskilde',
  'Herning',
];
const DAYS = 10;
const run = randomBytes(3).toString('hex');

interface Loaded {
  asyncAccount: string;
  customerAccount?: string;
  email: string;
  at: string;
}

async function load(): Promise<Loaded[]> {
  await store.tables.ensureCreated();
  const loaded: Loaded[] = [];
  const now = Date.now();
  let next = 0;
  let done = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: 48 }, async () => {
      while (next < count) {
        const i = next++;
        const at = new Date(now - Math.floor((i / count) * DAYS * 86_400_000)).toISOString();
        // A valid async account: ASYNC- and 10 characters (3 of this run, 7 of the counter).
        const customerKey = `ASYNC-${run.slice(0, 3).toUpperCase()}${String(i).padStart(7, '0')}`;
        const customer: Customer = {
          customerType: 'Person',
          firstName: 'Bench',
          lastName: `No${i}`,
          email: `bench.${run}.${i}@example.dk`,
          customerGroup: 'Retail',
          currency: 'DKK',
          address: { street: 'Vej 1', city: CITIES[i % CITIES.length]!, postalCode: '8000', countryRegion: 'DK' },
          attributes: { loyaltyTier: ['Gold', 'Silver', 'Bronze', 'None'][i % 4]! },
        };
        const status: Operation['status'] = i % 20 === 0 ? 'Failed' : i % 20 === 1 ? 'Pending' : 'Synced';
        const customerAccount = status === 'Synced' ? formatAccount(900_000_000 + i) : undefined;
        const changes = flatten(customer);
        const op: Operation = {
          operationId: operationIdOf(customerKey, 1),
          requestId: `bench-${i}`,
          customerKey,
          seq: 1,
          channel: CHANNELS[i % CHANNELS.length]!,
          type: 'Create',
          asyncCustomerAccount: customerKey,
          customerAccount,
          operationTimestamp: at,
          status,
          changeDescription: status === 'Failed' ? 'Failed: bench' : 'Created',
          changes,
          attributes: Object.entries(changes).map(([name, newValue]) => ({ name, oldValue: null, newValue })),
          ...(status === 'Failed'
            ? { lastError: { code: i % 40 === 0 ? 'EMAIL_IN_USE' : 'CUSTOMER_GROUP_NOT_FOUND', message: 'bench', at } }
            : {}),
          attempts: status === 'Pending' ? 0 : 1,
          history: [{ at, status: 'Pending', detail: 'Submitted.' }],
        };
        const record: CustomerRecord = {
          customerKey,
          asyncCustomerAccount: customerKey,
          customerAccount,
          customer: status === 'Synced' ? customer : undefined,
          version: status === 'Synced' ? 1 : 0,
          nextSeq: 2,
          appliedThrough: status === 'Synced' ? 1 : 0,
          publishedThrough: status === 'Synced' ? 1 : 0,
        };
        await Promise.all([
          store.customers.insertNew(record, op),
          store.operationIndex.put(op),
          status === 'Failed' ? store.operationIndex.putFailed(op) : undefined,
          customerAccount ? store.accounts.put(customerAccount, customerKey) : undefined,
        ]);
        loaded.push({ asyncAccount: customerKey, customerAccount, email: customer.email, at });
        if (++done % 10_000 === 0)
          process.stderr.write(`loaded ${done} (${Math.round(done / ((Date.now() - started) / 1000))}/s)\n`);
      }
    }),
  );
  return loaded;
}

/** A response body as far as the benchmark looks into it. */
interface Body {
  items?: { operationId: string; asyncCustomerAccount: string; customerAccount?: string; operationTimestamp: string }[];
  attributes?: { name: string; newValue: string }[];
  continuationToken?: string;
}

async function time(path: string, token: string): Promise<{ ms: number; items: number; body: Body }> {
  const t0 = performance.now();
  const response = await fetch(`${baseUrl}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  const body = (await response.json()) as Body;
  if (response.status !== 200) throw new Error(`${path}: ${response.status} ${JSON.stringify(body)}`);
  return { ms: performance.now() - t0, items: body.items?.length ?? 0, body };
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

/** Targets for the queries, sampled through the API from data loaded earlier. */
async function sample(token: string): Promise<Loaded[]> {
  const out: Loaded[] = [];
  const now = Date.now();
  for (let i = 0; i < 40; i++) {
    const to = new Date(now - Math.random() * DAYS * 86_400_000);
    const from = new Date(to.getTime() - 3_600_000);
    const { body } = await time(`/operations?from=${from.toISOString()}&to=${to.toISOString()}&top=5`, token);
    for (const item of body.items as {
      operationId: string;
      asyncCustomerAccount: string;
      customerAccount?: string;
      operationTimestamp: string;
    }[]) {
      const detail = (await time(`/operations/${item.operationId}`, token)).body as {
        attributes: { name: string; newValue: string }[];
      };
      const email = detail.attributes.find((a) => a.name === 'email')?.newValue ?? '';
      out.push({
        asyncAccount: item.asyncCustomerAccount,
        customerAccount: item.customerAccount,
        email,
        at: item.operationTimestamp,
      });
    }
  }
  return out;
}

async function main() {
  const token = signDevToken(settings.AUTH_DEV_SECRET!, {
    iss: settings.AUTH_ISSUER!,
    aud: settings.AUTH_AUDIENCE!,
    roles: ['Sync.Reader'],
  });
  const loaded = queryOnly ? await sample(token) : await load();
  const pick = () => loaded[Math.floor(Math.random() * loaded.length)]!;
  const synced = loaded.filter((l) => l.customerAccount);
  const kinds: Record<string, () => string> = {
    channel: () => `/operations?channel=${CHANNELS[Math.floor(Math.random() * CHANNELS.length)]}&top=100`,
    statusFailed: () => '/operations?status=Failed&top=100',
    customerAccount: () =>
      `/operations?customerAccount=${synced[Math.floor(Math.random() * synced.length)]!.customerAccount}`,
    asyncCustomerAccount: () => `/operations?asyncCustomerAccount=${pick().asyncAccount}`,
    timeRange: () => {
      const to = new Date(Date.parse(pick().at));
      return `/operations?from=${new Date(to.getTime() - 3_600_000).toISOString()}&to=${to.toISOString()}&top=100`;
    },
    fieldIn24h: () => {
      const target = pick();
      const to = new Date(Date.parse(target.at) + 3_600_000);
      return `/operations?field=email&value=${encodeURIComponent(target.email)}&from=${new Date(to.getTime() - 86_400_000).toISOString()}&to=${to.toISOString()}`;
    },
  };
  const results: Record<string, { p50: number; p95: number; samples: number }> = {};
  for (const [kind, path] of Object.entries(kinds)) {
    const samples: number[] = [];
    for (let i = 0; i < 30; i++) samples.push((await time(path(), token)).ms);
    results[kind] = { p50: Math.round(pct(samples, 50)), p95: Math.round(pct(samples, 95)), samples: samples.length };
  }
  // The 50th page of the unfiltered list, following continuation tokens.
  const deep: number[] = [];
  for (let r = 0; r < 3; r++) {
    let tokenParam = '';
    for (let page = 1; page <= 50; page++) {
      const { ms, body } = await time(`/operations?top=100${tokenParam}`, token);
      if (page === 50) deep.push(ms);
      tokenParam = `&continuationToken=${body.continuationToken ?? ''}`;
    }
  }
  results.deepPage50 = { p50: Math.round(pct(deep, 50)), p95: Math.round(pct(deep, 95)), samples: deep.length };
  console.log(JSON.stringify({ operations: queryOnly ? 'as loaded before' : count, auditQueryMs: results }, null, 2));
}

void main();
