import { randomBytes } from 'node:crypto';

import { TableClient } from '@azure/data-tables';

import type { MeterCounts } from '../local/request-meter';
import { cpuBetween, cpuSample } from './cpu';
import type { BenchStack } from './stack';

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

export const percentiles = (values: number[]): Percentiles => {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN);
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
};

/** Runs `task` for 0..count-1 with at most `concurrency` at a time. */
export async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

/**
 * The ceiling: concurrent single-entity upserts from this process straight to Azurite, each to its own
 * partition (as a customer's first write is), entities the size of an index entry.
 */
export async function rawWritesPerSecond(connectionString: string, count: number): Promise<number> {
  const table = TableClient.fromConnectionString(connectionString, 'benchRawWrites', {
    allowInsecureConnection: true,
  });
  await table.createTable();
  const started = performance.now();
  await pool(count, 64, async (i) => {
    await table.upsertEntity(
      { partitionKey: `p${i}`, rowKey: '', channel: 'web', type: 'Create', email: `raw.${i}@example.dk` },
      'Replace',
    );
  });
  const seconds = (performance.now() - started) / 1000;
  await table.deleteTable();
  return Math.round(count / seconds);
}

const CHANNELS = ['web', 'pos-001', 'pos-002', 'pos-003'];

/**
 * How the benchmark learns that operations are applied: `feed` reads the channels' feed (one request per poll,
 * as a channel would), `poll` reads every operation's status (about one request per operation, which no real
 * client spends). BENCH_COMPLETION picks it; `feed` unless told.
 */
export type Completion = 'feed' | 'poll';
export const defaultCompletion: Completion = process.env.BENCH_COMPLETION === 'poll' ? 'poll' : 'feed';

interface FeedItem {
  asyncCustomerAccount?: string;
  changedAt: string;
}

/** Where the feed has been read to, per stack: a later phase need not page through an earlier one's entries. */
const feedCursors = new WeakMap<BenchStack, string>();

/** Pause between feed reads while operations are outstanding. */
const FEED_POLL_MS = 150;
/** A feed that has not moved for this long gets the oldest outstanding operations' status read. */
const FEED_STALL_MS = 5000;

/**
 * Submits channel operations over HTTP — four creates to every edit of a customer created earlier in the
 * run — and records when each was sent, for the submit → Synced latency.
 */
class Submitter {
  private readonly run = randomBytes(3).toString('hex');
  private readonly tokens: Map<string, string>;
  private readonly created: string[] = [];
  private n = 0;
  readonly sent: { operationId: string; customerKey: string; seq: number; sentAt: number }[] = [];

  constructor(private readonly stack: BenchStack) {
    this.tokens = new Map(CHANNELS.map((c) => [c, stack.token('Channel', c)]));
  }

  async submit(): Promise<void> {
    const i = this.n++;
    const channel = CHANNELS[i % CHANNELS.length]!;
    const edit = i % 5 === 4 && this.created.length > 0;
    const path = edit
      ? `/channels/${channel}/customers/${this.created[(i * 7919) % this.created.length]}`
      : `/channels/${channel}/customers`;
    const body = edit
      ? { phone: `+45 ${String(10_000_000 + i)}`, attributes: { loyaltyTier: ['Gold', 'Silver'][i % 2]! } }
      : {
          customerType: 'Person',
          firstName: 'Bench',
          lastName: `No${i}`,
          email: `bench.${this.run}.${i}@example.dk`,
          customerGroup: 'Retail',
          currency: 'DKK',
          address: { street: 'Vej 1', city: 'Aarhus', postalCode: '8000', countryRegion: 'DK' },
        };
    const sentAt = Date.now();
    const response = await fetch(`${this.stack.baseUrl}${path}`, {
      method: edit ? 'PATCH' : 'POST',
      headers: { Authorization: `Bearer ${this.tokens.get(channel)}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status !== 202) throw new Error(`${path} answered ${response.status}: ${text}`);
    const answer = JSON.parse(text) as { operationId: string; asyncCustomerAccount?: string };
    if (answer.asyncCustomerAccount) this.created.push(answer.asyncCustomerAccount);
    // Operation ids are `<customer key>-<seq>` (operationIdOf); a channel's customer key is its async account.
    const match = /^(.+)-(\d+)$/.exec(answer.operationId);
    if (!match) throw new Error(`unexpected operation id ${answer.operationId}`);
    this.sent.push({ operationId: answer.operationId, customerKey: match[1]!, seq: Number(match[2]), sentAt });
  }

  /** Waits until every operation sent is Synced; returns each one's appliedAt (ms) in send order. */
  appliedTimes(timeoutMs: number, completion: Completion): Promise<number[]> {
    return completion === 'feed' ? this.appliedFromFeed(timeoutMs) : this.appliedByPolling(timeoutMs);
  }

  private readonly reader = () => this.stack.token('Sync.Reader');

  private async operation(id: string) {
    const response = await fetch(`${this.stack.baseUrl}/operations/${id}`, {
      headers: { Authorization: `Bearer ${this.reader()}` },
    });
    return (await response.json()) as { operationId?: string; status: string; appliedAt?: string };
  }

  /**
   * From the channels' feed, which holds every channel's customers: one item per applied operation, oldest
   * first, its `changedAt` the operation's `appliedAt`. A customer's operations apply in sequence order (an edit
   * sent before its create is applied waits for it), so its k-th item is its operation k (sequence numbers start
   * at 1; none of the benchmark's operations fails, and a failure ends the run). Matching by sequence number
   * rather than by position among the answers received keeps an operation whose answer was lost (a submit that
   * failed on the client's side but was accepted) from shifting the others.
   * If the feed stops moving, the oldest outstanding operations' status says whether one failed.
   */
  private async appliedFromFeed(timeoutMs: number): Promise<number[]> {
    const bySeq = new Map<string, Map<number, number>>();
    this.sent.forEach((s, i) => {
      const ops = bySeq.get(s.customerKey) ?? new Map<number, number>();
      bySeq.set(s.customerKey, ops);
      ops.set(s.seq, i);
    });
    const itemsSeen = new Map<string, number>();
    const applied = this.sent.map(() => NaN);
    let outstanding = this.sent.length;
    const token = this.tokens.get('web')!;
    const deadline = Date.now() + timeoutMs;
    let lastProgress = Date.now();
    let cursor = feedCursors.get(this.stack);
    while (outstanding > 0) {
      const query = cursor === undefined ? '' : `?cursor=${encodeURIComponent(cursor)}`;
      const response = await fetch(`${this.stack.baseUrl}/channels/web/customer-updates${query}`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      const text = await response.text();
      if (response.status !== 200) throw new Error(`the feed answered ${response.status}: ${text}`);
      const page = JSON.parse(text) as { items: FeedItem[]; cursor: string };
      for (const item of page.items) {
        const key = item.asyncCustomerAccount;
        const ops = key === undefined ? undefined : bySeq.get(key);
        if (!ops) continue; // another phase's customer
        const seq = (itemsSeen.get(key!) ?? 0) + 1;
        itemsSeen.set(key!, seq);
        const i = ops.get(seq);
        if (i === undefined) continue; // an operation whose answer was lost
        applied[i] = Date.parse(item.changedAt);
        outstanding--;
      }
      cursor = page.cursor;
      feedCursors.set(this.stack, cursor);
      if (page.items.length > 0) lastProgress = Date.now();
      if (outstanding === 0) break;
      if (page.items.length >= 500) continue; // a full page: more is waiting
      if (Date.now() - lastProgress > FEED_STALL_MS || Date.now() > deadline) {
        const stuck = applied.flatMap((t, i) => (Number.isNaN(t) ? [this.sent[i]!.operationId] : [])).slice(0, 16);
        const ops = await Promise.all(stuck.map((id) => this.operation(id)));
        const failed = ops.find((op) => op.status === 'Failed');
        if (failed) throw new Error(`an operation failed: ${JSON.stringify(failed)}`);
        if (Date.now() > deadline) {
          const statuses = ops.map((op, i) => `${stuck[i]} ${op.status}`).join(', ');
          throw new Error(`${outstanding} operations not in the feed after ${timeoutMs / 1000} s: ${statuses}`);
        }
        lastProgress = Date.now(); // look again after another stall
      }
      await new Promise((r) => setTimeout(r, FEED_POLL_MS));
    }
    return applied;
  }

  /** The old way: reads every operation until it is Synced (about one request per operation). */
  private async appliedByPolling(timeoutMs: number): Promise<number[]> {
    const deadline = Date.now() + timeoutMs;
    const applied: number[] = [];
    // Operations finish roughly in send order: wait on each in turn, reading a few ahead at a time.
    for (let i = 0; i < this.sent.length;) {
      const ops = await Promise.all(this.sent.slice(i, i + 16).map((s) => this.operation(s.operationId)));
      let progressed = false;
      for (const op of ops) {
        if (op.status === 'Failed') throw new Error(`an operation failed: ${JSON.stringify(op)}`);
        if (op.status !== 'Synced' || !op.appliedAt) break;
        applied.push(Date.parse(op.appliedAt));
        i++;
        progressed = true;
      }
      if (progressed) continue;
      if (Date.now() > deadline) throw new Error(`operations still not Synced after ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return applied;
  }
}

/** What the stack spent over a measured interval, per operation. */
export interface Cost {
  /** Table Storage requests the host made, per operation (local/request-meter.ts); absent with BENCH_METER=0. */
  requestsPerOperation?: { submit: number; process: number; total: number };
  /** The same by method and table (`POST $batch`: transactions), for where the requests go. */
  requestsPerOperationByKind?: Record<string, number>;
  /** The host's Table Storage requests for the benchmark's own completion detection, per operation. */
  completionDetectionRequestsPerOperation?: number;
  /** CPU ms per operation by process (bench/cpu.ts): storage = Azurite, loadGenerator = this process. */
  cpuMsPerOperation: { host: number; storage: number; broker: number; loadGenerator: number; total: number };
  /** Share of the machine's CPU that was busy over the interval, and what everything else used (s). */
  machineBusyPercent: number;
  otherCpuSeconds: number;
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** Starts measuring what the stack spends; the returned function ends it, for `operations` operations. */
async function measureCost(stack: BenchStack): Promise<(operations: number) => Promise<Cost>> {
  const countsBefore = await stack.meterCounts();
  const cpuBefore = cpuSample(stack.pids());
  return async (operations) => {
    const cpu = cpuBetween(cpuBefore, cpuSample(stack.pids()));
    const countsAfter = await stack.meterCounts();
    const perOp = (seconds: number | undefined) => round2(((seconds ?? NaN) * 1000) / operations);
    const s = cpu.seconds;
    const cost: Cost = {
      cpuMsPerOperation: {
        host: perOp(s.host),
        storage: perOp(s.azurite),
        broker: perOp(s.broker),
        loadGenerator: perOp(s.bench),
        total: perOp((s.host ?? NaN) + (s.azurite ?? NaN) + (s.broker ?? NaN) + (s.bench ?? NaN)),
      },
      machineBusyPercent: cpu.machineBusyPercent,
      otherCpuSeconds: cpu.otherSeconds,
    };
    if (countsBefore && countsAfter) {
      const delta = (k: keyof MeterCounts['storage']) => countsAfter.storage[k] - countsBefore.storage[k];
      cost.requestsPerOperation = {
        submit: round2(delta('submit') / operations),
        process: round2(delta('process') / operations),
        total: round2((delta('submit') + delta('process')) / operations),
      };
      cost.completionDetectionRequestsPerOperation = round2(delta('completionDetection') / operations);
      const kinds = Object.entries(countsAfter.byKind).map(([kind, n]): [string, number] => [
        kind,
        round2((n - (countsBefore.byKind[kind] ?? 0)) / operations),
      ]);
      cost.requestsPerOperationByKind = Object.fromEntries(kinds.filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]));
    }
    return cost;
  };
}

/** Closed loop: `count` operations at `concurrency`, end to end (first send to last Synced). */
export async function throughput(
  stack: BenchStack,
  count: number,
  options: { concurrency?: number; completion?: Completion } = {},
) {
  const completion = options.completion ?? defaultCompletion;
  const submitter = new Submitter(stack);
  const cost = await measureCost(stack);
  const started = Date.now();
  await pool(count, options.concurrency ?? 64, () => submitter.submit());
  const submitSeconds = (Date.now() - started) / 1000;
  const applied = await submitter.appliedTimes(300_000, completion);
  const seconds = (Math.max(...applied) - started) / 1000;
  return {
    operations: count,
    completion,
    submitPerSecond: Math.round(count / submitSeconds),
    opsPerSecond: Math.round(count / seconds),
    ...(await cost(count)),
  };
}

/**
 * Open loop: operations sent at a steady `rate` per second for `seconds`, whether or not earlier ones have
 * finished (as channels would), and the time from sending each to its appliedAt.
 */
export async function latencyAtRate(
  stack: BenchStack,
  rate: number,
  seconds: number,
  completion: Completion = defaultCompletion,
) {
  const submitter = new Submitter(stack);
  const total = rate * seconds;
  const cost = await measureCost(stack);
  const started = performance.now();
  // A submit refused under overload is a finding, not the end of the run: counted and reported. Each is settled
  // as it ends (a rejection nobody handles until the loop is over would end the process).
  const failures: unknown[] = [];
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(submitter.submit().catch((error: unknown) => void failures.push(error)));
  }
  await Promise.all(inFlight);
  const achievedRate = Math.round(total / ((performance.now() - started) / 1000));
  const applied = await submitter.appliedTimes(300_000, completion);
  const latencies = submitter.sent.map((s, i) => applied[i]! - s.sentAt);
  const spent = await cost(submitter.sent.length);
  return {
    completion,
    offeredRate: rate,
    achievedRate,
    operations: total,
    failedSubmits: failures.length,
    ...(failures[0] ? { firstFailure: String(failures[0]).slice(0, 300) } : {}),
    ...percentiles(latencies),
    ...spent,
  };
}
