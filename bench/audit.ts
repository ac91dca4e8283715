import type { TableServiceClientOptions } from '@azure/data-tables';

import { formatCustomerAccount } from '../shared/domain/accounts';
import { attributeGrid, type Changes, flatten } from '../shared/domain/changes';
import type { Customer } from '../shared/domain/customer';
import { type CustomerRecord, type Operation, operationIdOf, type OperationStatus } from '../shared/domain/operation';
import type { Store } from '../shared/domain/ports';
import { listQuerySchema } from '../shared/http/schemas';
import type { SyncContext } from '../shared/operations/context';
import { toFilter } from '../shared/operations/filter';
import { listOperations } from '../shared/operations/list';
import { openStore } from '../shared/storage';
import { percentiles, pool } from './pipeline';
import type { BenchStack } from './stack';

const CHANNELS = ['web', 'webshop-b2b', ...Array.from({ length: 8 }, (_, i) => `pos-00${i + 1}`)];
const CITIES = ['Aarhus', 'Odense', 'Aalborg', 'Esbjerg', 'Randers', 'Kolding', 'Horsens', 'Vejle', 'Roskilde'];
/** A customer's history as loaded: its create and this many edits. */
const OPS_PER_CUSTOMER = 4;
/** The loaded operations span this many days before now. */
export const LOAD_DAYS = 7;
const DAY_MS = 86_400_000;

interface Sample {
  customerKey: string;
  customerAccount?: string;
  email: string;
  at: string;
}

/**
 * Fills the audit log with `count` operations through the project's own storage code — the entities a submit
 * and the processor write: a customer partition (record + operations in one transaction), the hour index
 * (whose writes the WriteBatcher groups per partition), the failed index and the account index. About 2% of
 * customers end with a Failed edit and 1% with a Pending one. Returns a sample of what it wrote.
 */
export async function loadAuditLog(store: Store, count: number, progress: (line: string) => void): Promise<Sample[]> {
  const customers = Math.ceil(count / OPS_PER_CUSTOMER);
  const now = Date.now();
  const samples: Sample[] = [];
  const started = performance.now();
  let done = 0;
  // Customers in time order, so that concurrent writes meet in the same index partitions, as live traffic does.
  await pool(customers, 48, async (i) => {
    const start = now - DAY_MS * LOAD_DAYS + Math.floor((i / customers) * (DAY_MS * LOAD_DAYS - 3_600_000));
    const { record, operations } = customerHistory(i, start);
    await Promise.all([
      store.customers.insertNew(record, ...operations),
      ...operations.map((op) => store.operationIndex.put(op)),
      ...operations.filter((op) => op.status === 'Failed').map((op) => store.operationIndex.putFailed(op)),
      record.customerAccount ? store.accounts.put(record.customerAccount, record.customerKey) : undefined,
    ]);
    if (i % 97 === 0) {
      const op = operations[i % operations.length]!;
      samples.push({
        customerKey: record.customerKey,
        customerAccount: record.customerAccount,
        email: String(operations[0]!.changes.email),
        at: op.operationTimestamp,
      });
    }
    if (++done % 10_000 === 0) {
      const rate = Math.round((done * OPS_PER_CUSTOMER) / ((performance.now() - started) / 1000));
      progress(`  loaded ${done * OPS_PER_CUSTOMER} operations (${rate}/s)`);
    }
  });
  return samples;
}

function customerHistory(i: number, start: number): { record: CustomerRecord; operations: Operation[] } {
  const customerKey = `ASYNC-B${String(i).padStart(9, '0')}`;
  const customerAccount = formatCustomerAccount(800_000_000 + i);
  const channel = CHANNELS[i % CHANNELS.length]!;
  const fate: OperationStatus = i % 50 === 7 ? 'Failed' : i % 100 === 3 ? 'Pending' : 'Synced';
  const customer: Customer = {
    customerType: 'Person',
    firstName: 'Bench',
    lastName: `No${i}`,
    email: `bench.${i}@example.dk`,
    customerGroup: 'Retail',
    currency: 'DKK',
    address: { street: 'Vej 1', city: CITIES[i % CITIES.length]!, postalCode: '8000', countryRegion: 'DK' },
    attributes: { loyaltyTier: 'None' },
  };
  const operations: Operation[] = [];
  for (let seq = 1; seq <= OPS_PER_CUSTOMER; seq++) {
    const at = new Date(start + (seq - 1) * 600_000 + (i % 600) * 1000).toISOString();
    const changes: Changes =
      seq === 1
        ? flatten(customer)
        : {
            'address.city': CITIES[(i + seq) % CITIES.length]!,
            'attributes.loyaltyTier': ['Gold', 'Silver'][seq % 2]!,
          };
    const status: OperationStatus = seq < OPS_PER_CUSTOMER ? 'Synced' : fate;
    operations.push({
      operationId: operationIdOf(customerKey, seq),
      requestId: `bench-${i}-${seq}`,
      customerKey,
      seq,
      channel: seq === 1 ? channel : CHANNELS[(i + seq) % CHANNELS.length]!,
      type: seq === 1 ? 'Create' : 'Update',
      asyncCustomerAccount: customerKey,
      customerAccount,
      operationTimestamp: at,
      status,
      changeDescription: status === 'Failed' ? "Failed: Customer group 'Retail' does not exist in HQ." : 'Applied.',
      changes,
      grid: attributeGrid(seq === 1 ? undefined : customer, changes),
      ...(status === 'Failed'
        ? { lastError: { code: 'CUSTOMER_GROUP_NOT_FOUND', message: 'Customer group not found.', at } }
        : {}),
      attempts: status === 'Pending' ? 0 : 1,
      ...(status === 'Synced' ? { appliedAt: at } : {}),
      history: [
        { at, status: 'Pending', detail: 'Submitted.' },
        ...(status === 'Pending' ? [] : [{ at, status, detail: status === 'Synced' ? 'Applied.' : 'Failed.' }]),
      ],
    });
  }
  const appliedThrough = fate === 'Synced' ? OPS_PER_CUSTOMER : OPS_PER_CUSTOMER - 1;
  const record: CustomerRecord = {
    customerKey,
    asyncCustomerAccount: customerKey,
    customerAccount,
    customer,
    version: appliedThrough,
    nextSeq: OPS_PER_CUSTOMER + 1,
    appliedThrough,
  };
  return { record, operations };
}

type Policy = NonNullable<TableServiceClientOptions['additionalPolicies']>[number]['policy'];

/**
 * The same query code the function runs, in this process over a store that counts every entity storage
 * returns (point reads and query pages alike): entities read per item returned.
 */
async function meteredLister(stack: BenchStack) {
  const meter = { entities: 0 };
  const policy: Policy = {
    name: 'bench-entity-meter',
    async sendRequest(request, next) {
      const response = await next(request);
      // Table listings (which hour tables exist) return table names, not entities.
      const entityRead = !new URL(request.url).pathname.endsWith('/Tables');
      if (entityRead && request.method === 'GET' && response.status === 200 && response.bodyAsText) {
        const body = JSON.parse(response.bodyAsText) as { value?: unknown[] };
        meter.entities += Array.isArray(body.value) ? body.value.length : 1;
      }
      return response;
    },
  };
  const store = await openStore(stack.settings.STORAGE_CONNECTION_STRING!, stack.settings.TABLE_PREFIX, {
    additionalPolicies: [{ policy, position: 'perCall' }],
  });
  // Listings need the store, the clock and how far back they look by default: the retention period.
  const ctx = { store, clock: () => new Date(), retentionDays: 90 } as SyncContext;
  return async (query: string): Promise<{ entities: number; items: number }> => {
    const raw = listQuerySchema.parse(Object.fromEntries(new URLSearchParams(query)));
    const { top, continuationToken, ...filterKeys } = raw;
    const before = meter.entities;
    const page = await listOperations(ctx, toFilter(filterKeys), top, continuationToken);
    return { entities: meter.entities - before, items: page.items.length };
  };
}

export interface QueryResult {
  p50: number;
  p95: number;
  entitiesReadPerItem: number;
  samples: number;
}

/** Times each filter kind over HTTP and meters the same queries in process. */
export async function timeQueries(
  stack: BenchStack,
  samples: Sample[],
  rounds: number,
): Promise<Record<string, QueryResult>> {
  const reader = stack.token('Sync.Reader');
  const get = async (query: string) => {
    const started = performance.now();
    const response = await fetch(`${stack.baseUrl}/operations?${query}`, {
      headers: { Authorization: `Bearer ${reader}` },
    });
    const body = (await response.json()) as { items: unknown[]; continuationToken?: string };
    if (response.status !== 200) throw new Error(`${query}: ${response.status} ${JSON.stringify(body)}`);
    return { ms: performance.now() - started, items: body.items.length, token: body.continuationToken };
  };
  const pick = (n: number) => samples[(n * 7919) % samples.length]!;
  const window = (at: string, hours: number) => {
    const to = new Date(Date.parse(at) + 60_000);
    return `from=${new Date(to.getTime() - hours * 3_600_000).toISOString()}&to=${to.toISOString()}`;
  };
  const deepPageQuery = async (): Promise<string> => {
    let token: string | undefined;
    for (let page = 1; page < 50; page++) {
      token = (await get(`top=100${token ? `&continuationToken=${token}` : ''}`)).token;
      if (!token) throw new Error(`the log has fewer than 50 pages of 100 operations`);
    }
    return `top=100&continuationToken=${token}`;
  };
  const kinds: Record<string, (n: number) => string | Promise<string>> = {
    channel: (n) => `channel=${CHANNELS[n % CHANNELS.length]}&top=100`,
    statusFailed: () => 'status=Failed&top=100',
    customerAccount: (n) => `customerAccount=${pick(n).customerAccount}`,
    asyncCustomerAccount: (n) => `asyncCustomerAccount=${pick(n).customerKey}`,
    timeRange: (n) => `${window(pick(n).at, 1)}&top=100`,
    fieldIn24h: (n) => `field=email&value=${encodeURIComponent(pick(n).email)}&${window(pick(n).at, 24)}`,
    deepPage: deepPageQuery,
  };
  const metered = await meteredLister(stack);
  const results: Record<string, QueryResult> = {};
  for (const [kind, query] of Object.entries(kinds)) {
    const times: number[] = [];
    let entities = 0;
    let items = 0;
    // The deep page is slow to reach (49 pages first), so it gets a fifth of the samples.
    const n = kind === 'deepPage' ? Math.max(3, Math.round(rounds / 5)) : rounds;
    for (let i = 0; i < n; i++) {
      const q = await query(i);
      const timed = await get(q);
      if (timed.items === 0) throw new Error(`${kind}: no items for ${q}`);
      times.push(timed.ms);
      if (i < 5) {
        const read = await metered(q);
        entities += read.entities;
        items += read.items;
      }
    }
    const { p50, p95 } = percentiles(times);
    results[kind] = { p50, p95, entitiesReadPerItem: Math.round((entities / items) * 100) / 100, samples: n };
  }
  return results;
}
