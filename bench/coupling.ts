import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';

import type { DevDataverse } from '../local/dataverse';
import { rowIdFor } from '../shared/coupling/records';
import { cpuBetween, cpuSample, type CpuUse } from './cpu';
import { pool } from './pipeline';
import type { BenchStack } from './stack';

/**
 * The coupling phase: HQ customers inserted into the development Dataverse by the crm-sync job, then a tenth of
 * them edited in HQ and another tenth in the CRM and synchronized, each direction in runs of its own; then
 * another tenth each way synchronized in one run; then runs that find nothing to do. Every run goes through
 * `POST /api/jobs/crm-sync/run`, as an operator's would, and each batch of changes is followed by the run that
 * sees its echoes (or settles the operations it submitted to HQ), so the next measurement starts clean.
 */

const COUNT_KEYS = ['inserted', 'modified', 'deleted', 'unchanged', 'skipped', 'failed', 'coupled'] as const;
type Counts = Record<(typeof COUNT_KEYS)[number], number>;
const zero = (): Counts => ({ inserted: 0, modified: 0, deleted: 0, unchanged: 0, skipped: 0, failed: 0, coupled: 0 });

interface JobRunAnswer {
  durationMs: number;
  counts: Partial<Counts>;
  directions?: { ToCrm: Partial<Counts>; FromCrm: Partial<Counts> };
  message: string;
}

/** What it took to synchronize one batch of changes: one or more runs until one says "Completed.". */
export interface SyncMeasure {
  runs: number;
  /** The runs' own durations (durationMs, measured by the host), summed. */
  hostMs: number;
  /** The same runs as the operator sees them: each HTTP call, end to end. */
  httpMs: number;
  directions: { ToCrm: Counts; FromCrm: Counts };
  /** Requests the development Dataverse received during the runs, in all and by method. */
  crmRequests: number;
  crmRequestsByMethod: Record<string, number>;
  /** POST, PATCH and DELETE among them. */
  crmWrites: number;
  cpu: CpuUse;
}

export interface QuietMeasure {
  /** Each quiet run, end to end over HTTP. */
  httpMs: number[];
  /** The same runs' own durations. */
  hostMs: number[];
  p50HttpMs: number;
  maxHttpMs: number;
  /** Requests to the CRM per quiet run, and writes (to either side) found to do: all zero when quiet. */
  crmRequestsPerRun: number;
  crmWrites: number;
  changesFound: number;
}

export interface CouplingResults {
  customers: number;
  couplings: number;
  /** CRM_CONCURRENCY as the host ran with: CRM requests in flight, and records synchronized at a time. */
  crmConcurrency: number;
  dataverseRateLimit: string;
  /** Creating the customers through the channel API until every one is Synced (setup, not coupling). */
  createSeconds: number;
  insert: SyncMeasure & { recordsPerSecond: number; crmRequestsPerRecord: number };
  /** The next run: change tracking hands back every row the insert created, which must not echo. */
  insertEcho: SyncMeasure;
  toCrm: SyncMeasure & { records: number; recordsPerSecond: number; crmRequestsPerRecord: number };
  toCrmEcho: SyncMeasure;
  fromCrm: SyncMeasure & { records: number; recordsPerSecond: number; crmRequestsPerRecord: number };
  /** From the FromCrm run's end until every CRM value is in HQ (the pipeline applying the crm channel's edits). */
  fromCrmAppliedSeconds: number;
  /** The run after that: each record sees its operation applied and is compared with its row once more. */
  fromCrmSettle: SyncMeasure & { crmRequestsPerRecord: number };
  /**
   * The scenario in one run: another tenth edited in HQ and another in the CRM, then one run for both
   * directions (each record counted under its direction), and the run that settles it.
   */
  bothAtOnce: SyncMeasure & { records: number; recordsPerSecond: number; crmRequestsPerRecord: number };
  bothAtOnceSettle: SyncMeasure;
  /** FromCrm end to end: CRM edit detected → in HQ → settled, for the whole batch. */
  fromCrmEndToEndRecordsPerSecond: number;
  quiet: QuietMeasure;
}

interface Customer {
  key: string;
  table: 'contacts' | 'accounts';
}

export interface CouplingOptions {
  customers: number;
  /** Quiet runs to time. */
  quietRuns?: number;
  log: (line: string) => void;
}

export async function couplingPhase(stack: BenchStack, options: CouplingOptions): Promise<CouplingResults> {
  const dataverse = stack.dataverse;
  if (!dataverse) throw new Error('the coupling phase needs a stack started with { dataverse: true }');
  const { log } = options;
  const n = options.customers;
  const edits = Math.max(1, Math.round(n / 10));
  const api = new Api(stack);

  log(`    creating ${n} customers through the channel API…`);
  const createStarted = performance.now();
  const customers = await createCustomers(api, n);
  const createSeconds = round1((performance.now() - createStarted) / 1000);
  log(`    ${n} customers Synced in ${createSeconds} s; crm-sync inserts them into the CRM…`);

  const sync = (label: string) => syncUntilComplete(stack, api, dataverse, label, log);
  const insertRun = await sync('insert');
  const inserted = insertRun.directions.ToCrm.inserted;
  if (inserted !== n)
    throw new Error(`the insert runs inserted ${inserted} rows, not ${n}: ${JSON.stringify(insertRun)}`);
  const insertEcho = await sync('echo of the insert');

  // A tenth edited in HQ (every tenth customer from the first), another tenth in the CRM (from the sixth).
  const hqEdited = customers.filter((_, i) => i % 10 === 0).slice(0, edits);
  const crmEdited = customers.filter((_, i) => i % 10 === 5).slice(0, edits);
  const hqEditedToo = customers.filter((_, i) => i % 10 === 1).slice(0, edits);
  const crmEditedToo = customers.filter((_, i) => i % 10 === 6).slice(0, edits);

  log(`    editing ${hqEdited.length} customers in HQ (channel PATCH) and waiting until they are applied…`);
  await editInHq(api, hqEdited, 30_000_000);
  const toCrmRun = await sync('HQ edits to the CRM');
  const toCrmEcho = await sync('echo of the CRM writes');

  log(`    editing ${crmEdited.length} other customers in the CRM (PATCH to the development Dataverse)…`);
  const crmPhones = await editInCrm(dataverse, crmEdited, 40_000_000);
  const fromCrmRun = await sync('CRM edits to HQ');
  const appliedStarted = performance.now();
  await waitForHqValues(api, crmEdited, crmPhones);
  const fromCrmAppliedSeconds = round1((performance.now() - appliedStarted) / 1000);
  log(`    the CRM values are in HQ ${fromCrmAppliedSeconds} s after the run`);
  const fromCrmSettle = await sync('settling the CRM edits');

  log(`    editing ${hqEditedToo.length} more in HQ and ${crmEditedToo.length} more in the CRM, one run for both…`);
  await editInHq(api, hqEditedToo, 50_000_000);
  const crmPhonesToo = await editInCrm(dataverse, crmEditedToo, 60_000_000);
  const bothRun = await sync('both directions at once');
  await waitForHqValues(api, crmEditedToo, crmPhonesToo);
  const bothAtOnceSettle = await sync('settling both');

  log(`    timing ${options.quietRuns ?? 5} runs that find nothing to do…`);
  const quiet = await quietRuns(api, dataverse, options.quietRuns ?? 5, settledDelay);

  const perSecond = (records: number, ms: number) => Math.round((records / ms) * 1000);
  const perRecord = (requests: number, records: number) => Math.round((requests / records) * 100) / 100;
  const toCrmRecords = toCrmRun.directions.ToCrm.modified;
  const fromCrmRecords = fromCrmRun.directions.FromCrm.modified;
  const fromCrmEndToEndMs = fromCrmRun.httpMs + fromCrmAppliedSeconds * 1000 + fromCrmSettle.httpMs;
  const bothRecords = bothRun.directions.ToCrm.modified + bothRun.directions.FromCrm.modified;
  return {
    customers: n,
    couplings: dataverse.rows('contacts').length + dataverse.rows('accounts').length,
    crmConcurrency: Number(stack.settings.CRM_CONCURRENCY ?? process.env.CRM_CONCURRENCY ?? 16),
    dataverseRateLimit: 'none',
    createSeconds,
    insert: {
      ...insertRun,
      recordsPerSecond: perSecond(inserted, insertRun.hostMs),
      crmRequestsPerRecord: perRecord(insertRun.crmRequests, inserted),
    },
    insertEcho,
    toCrm: {
      ...toCrmRun,
      records: toCrmRecords,
      recordsPerSecond: perSecond(toCrmRecords, toCrmRun.hostMs),
      crmRequestsPerRecord: perRecord(toCrmRun.crmRequests, toCrmRecords),
    },
    toCrmEcho,
    fromCrm: {
      ...fromCrmRun,
      records: fromCrmRecords,
      recordsPerSecond: perSecond(fromCrmRecords, fromCrmRun.hostMs),
      crmRequestsPerRecord: perRecord(fromCrmRun.crmRequests, fromCrmRecords),
    },
    fromCrmAppliedSeconds,
    fromCrmSettle: { ...fromCrmSettle, crmRequestsPerRecord: perRecord(fromCrmSettle.crmRequests, fromCrmRecords) },
    fromCrmEndToEndRecordsPerSecond: perSecond(fromCrmRecords, fromCrmEndToEndMs),
    bothAtOnce: {
      ...bothRun,
      records: bothRecords,
      recordsPerSecond: perSecond(bothRecords, bothRun.hostMs),
      crmRequestsPerRecord: perRecord(bothRun.crmRequests, bothRecords),
    },
    bothAtOnceSettle,
    quiet,
  };
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** The feed holds back entries younger than a second (FEED_SETTLE_MS): a run started sooner would miss them. */
const settledDelay = () => sleep(1500);

/** JSON over HTTP to the host, without fetch's 300-s header timeout (a crm-sync run may take its 240-s budget). */
class Api {
  private readonly tokens = new Map<string, string>();
  constructor(private readonly stack: BenchStack) {}

  token(role: 'Channel' | 'Sync.Reader' | 'Sync.Operator', channel?: string) {
    const key = `${role}/${channel ?? ''}`;
    let token = this.tokens.get(key);
    if (!token) this.tokens.set(key, (token = this.stack.token(role, channel)));
    return token;
  }

  send(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: string }> {
    const url = new URL(`${this.stack.baseUrl}${path}`);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          agent: keepAlive,
          headers: {
            Authorization: `Bearer ${token}`,
            ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {}),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  async json<T>(method: string, path: string, token: string, expect: number, body?: unknown): Promise<T> {
    const answer = await this.send(method, path, token, body);
    if (answer.status !== expect) throw new Error(`${method} ${path} answered ${answer.status}: ${answer.body}`);
    return JSON.parse(answer.body) as T;
  }
}

const keepAlive = new Agent({ keepAlive: true, maxSockets: 64 });

const CHANNEL = 'web';

async function createCustomers(api: Api, count: number): Promise<Customer[]> {
  const run = randomBytes(3).toString('hex');
  const token = api.token('Channel', CHANNEL);
  const customers: Customer[] = new Array<Customer>(count);
  const operations: string[] = new Array<string>(count);
  await pool(count, 64, async (i) => {
    const organization = i % 5 === 4;
    const customer = {
      customerType: organization ? 'Organization' : 'Person',
      ...(organization ? { organizationName: `Bench ${run} ApS ${i}` } : { firstName: 'Bench', lastName: `No${i}` }),
      email: `coupling.${run}.${i}@example.dk`,
      phone: `+45 ${String(20_000_000 + i)}`,
      customerGroup: 'Retail',
      currency: 'DKK',
      address: { street: `Vej ${i}`, city: 'Aarhus', postalCode: '8000', countryRegion: 'DK' },
    };
    const answer = await api.json<{ operationId: string; asyncCustomerAccount: string }>(
      'POST',
      `/channels/${CHANNEL}/customers`,
      token,
      202,
      customer,
    );
    customers[i] = { key: answer.asyncCustomerAccount, table: organization ? 'accounts' : 'contacts' };
    operations[i] = answer.operationId;
  });
  await waitSynced(api, operations);
  return customers;
}

/** Waits until every operation is Synced, checking them in order a few at a time (they finish roughly in order). */
async function waitSynced(api: Api, operationIds: string[], timeoutMs = 600_000): Promise<void> {
  const reader = api.token('Sync.Reader');
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < operationIds.length;) {
    const ops = await Promise.all(
      operationIds.slice(i, i + 16).map((id) => api.json<{ status: string }>('GET', `/operations/${id}`, reader, 200)),
    );
    let progressed = false;
    for (const op of ops) {
      if (op.status === 'Failed') throw new Error(`an operation failed: ${JSON.stringify(op)}`);
      if (op.status !== 'Synced') break;
      i++;
      progressed = true;
    }
    if (progressed) continue;
    if (Date.now() > deadline) throw new Error(`operations still not Synced after ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

async function editInHq(api: Api, customers: Customer[], phoneBase: number): Promise<void> {
  const token = api.token('Channel', CHANNEL);
  const operations: string[] = new Array<string>(customers.length);
  await pool(customers.length, 64, async (i) => {
    const answer = await api.json<{ operationId: string }>(
      'PATCH',
      `/channels/${CHANNEL}/customers/${customers[i]!.key}`,
      token,
      202,
      { phone: `+45 ${String(phoneBase + i)}`, address: { city: 'Odense', postalCode: '5000' } },
    );
    operations[i] = answer.operationId;
  });
  await waitSynced(api, operations);
}

/** A CRM user's edit of each customer's row: a PATCH by id, as Dynamics 365 Sales would send it. Returns the phones. */
async function editInCrm(dataverse: DevDataverse, customers: Customer[], phoneBase: number): Promise<string[]> {
  const phones = customers.map((_, i) => `+45 ${String(phoneBase + i)}`);
  await pool(customers.length, 16, async (i) => {
    const { key, table } = customers[i]!;
    const response = await fetch(`${dataverse.apiUrl}${table}(${rowIdFor(key)})`, {
      method: 'PATCH',
      headers: { Authorization: 'Bearer crm-user', 'Content-Type': 'application/json', 'If-Match': '*' },
      body: JSON.stringify({ telephone1: phones[i], address1_city: 'Aalborg' }),
    });
    if (response.status !== 204 && response.status !== 200) {
      throw new Error(`PATCH ${table}(${rowIdFor(key)}) answered ${response.status}: ${await response.text()}`);
    }
  });
  return phones;
}

/** Waits until HQ holds each CRM edit's phone (the crm channel's operations applied by the pipeline). */
async function waitForHqValues(api: Api, customers: Customer[], phones: string[], timeoutMs = 600_000) {
  const reader = api.token('Sync.Reader');
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < customers.length;) {
    const batch = customers.slice(i, i + 16);
    const found = await Promise.all(
      batch.map(async (c) => {
        const answer = await api.send('GET', `/customers/${c.key}`, reader);
        return answer.status === 200 ? (JSON.parse(answer.body) as { customer: { phone?: string } }) : undefined;
      }),
    );
    let progressed = false;
    for (const customer of found) {
      if (customer?.customer.phone !== phones[i]) break;
      i++;
      progressed = true;
    }
    if (progressed) continue;
    if (Date.now() > deadline) throw new Error(`CRM edits still not in HQ after ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

async function runOnce(api: Api): Promise<{ run: JobRunAnswer; httpMs: number }> {
  const started = performance.now();
  const run = await api.json<JobRunAnswer>('POST', '/jobs/crm-sync/run', api.token('Sync.Operator'), 200);
  return { run, httpMs: performance.now() - started };
}

const add = (into: Counts, from: Partial<Counts> | undefined) => {
  for (const key of COUNT_KEYS) into[key] += from?.[key] ?? 0;
};

/** crm-sync runs until one completes (a run stops when it has spent its budget and the next resumes), summed. */
async function syncUntilComplete(
  stack: BenchStack,
  api: Api,
  dataverse: DevDataverse,
  label: string,
  log: (line: string) => void,
): Promise<SyncMeasure> {
  await settledDelay();
  dataverse.resetStats();
  const cpuBefore = cpuSample(stack.pids());
  const measure = { runs: 0, hostMs: 0, httpMs: 0, directions: { ToCrm: zero(), FromCrm: zero() } };
  for (;;) {
    const { run, httpMs } = await runOnce(api);
    measure.runs++;
    measure.hostMs += run.durationMs;
    measure.httpMs += httpMs;
    add(measure.directions.ToCrm, run.directions?.ToCrm);
    add(measure.directions.FromCrm, run.directions?.FromCrm);
    if (run.message === 'Completed.') break;
    if (!run.message.startsWith('Stopped:')) throw new Error(`crm-sync (${label}): ${run.message}`);
    if (measure.runs >= 20) throw new Error(`crm-sync (${label}) did not complete in 20 runs`);
  }
  const cpu = cpuBetween(cpuBefore, cpuSample(stack.pids()));
  const stats = dataverse.stats();
  const writes = (stats.byMethod.POST ?? 0) + (stats.byMethod.PATCH ?? 0) + (stats.byMethod.DELETE ?? 0);
  const done = { ...measure, httpMs: Math.round(measure.httpMs) };
  const result: SyncMeasure = {
    ...done,
    crmRequests: stats.total,
    crmRequestsByMethod: stats.byMethod,
    crmWrites: writes,
    cpu,
  };
  const nonZero = (c: Counts) =>
    COUNT_KEYS.filter((k) => c[k] > 0)
      .map((k) => `${k} ${c[k]}`)
      .join(', ') || 'nothing';
  log(
    `    ${label}: ${result.runs} run(s), ${result.hostMs} ms; ToCrm ${nonZero(result.directions.ToCrm)}; ` +
      `FromCrm ${nonZero(result.directions.FromCrm)}; ${result.crmRequests} CRM requests`,
  );
  return result;
}

async function quietRuns(
  api: Api,
  dataverse: DevDataverse,
  count: number,
  before: () => Promise<void>,
): Promise<QuietMeasure> {
  await before();
  const httpMs: number[] = [];
  const hostMs: number[] = [];
  let changesFound = 0;
  dataverse.resetStats();
  for (let i = 0; i < count; i++) {
    const { run, httpMs: ms } = await runOnce(api);
    if (run.message !== 'Completed.') throw new Error(`a quiet run did not complete: ${run.message}`);
    httpMs.push(Math.round(ms));
    hostMs.push(run.durationMs);
    // Quiet means not even a record to compare: every count, unchanged included, is zero.
    changesFound += COUNT_KEYS.reduce((sum, k) => sum + (run.counts[k] ?? 0), 0);
  }
  const stats = dataverse.stats();
  const sorted = [...httpMs].sort((a, b) => a - b);
  return {
    httpMs,
    hostMs,
    p50HttpMs: sorted[Math.floor(sorted.length / 2)]!,
    maxHttpMs: sorted[sorted.length - 1]!,
    crmRequestsPerRun: Math.round((stats.total / count) * 10) / 10,
    crmWrites: (stats.byMethod.POST ?? 0) + (stats.byMethod.PATCH ?? 0) + (stats.byMethod.DELETE ?? 0),
    changesFound,
  };
}
