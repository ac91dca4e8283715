import { randomBytes } from 'node:crypto';

import { TableClient } from '@azure/data-tables';

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
 * Submits channel operations over HTTP — four creates to every edit of a customer created earlier in the
 * run — and records when each was sent, for the submit → Synced latency.
 */
class Submitter {
  private readonly run = randomBytes(3).toString('hex');
  private readonly tokens: Map<string, string>;
  private readonly created: string[] = [];
  private n = 0;
  readonly sent: { operationId: string; sentAt: number }[] = [];

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
    this.sent.push({ operationId: answer.operationId, sentAt });
  }

  /** Waits until every operation sent is Synced; returns each one's appliedAt (ms) in send order. */
  async appliedTimes(timeoutMs: number): Promise<number[]> {
    const reader = this.stack.token('Sync.Reader');
    const get = async (id: string) =>
      (await (
        await fetch(`${this.stack.baseUrl}/operations/${id}`, { headers: { Authorization: `Bearer ${reader}` } })
      ).json()) as { status: string; appliedAt?: string };
    const deadline = Date.now() + timeoutMs;
    const applied: number[] = [];
    // Operations finish roughly in send order: wait on each in turn, reading a few ahead at a time.
    for (let i = 0; i < this.sent.length;) {
      const ops = await Promise.all(this.sent.slice(i, i + 16).map((s) => get(s.operationId)));
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

/** Closed loop: `count` operations at `concurrency`, end to end (first send to last Synced). */
export async function throughput(stack: BenchStack, count: number, concurrency = 64) {
  const submitter = new Submitter(stack);
  const started = Date.now();
  await pool(count, concurrency, () => submitter.submit());
  const submitSeconds = (Date.now() - started) / 1000;
  const applied = await submitter.appliedTimes(300_000);
  const seconds = (Math.max(...applied) - started) / 1000;
  return {
    operations: count,
    submitPerSecond: Math.round(count / submitSeconds),
    opsPerSecond: Math.round(count / seconds),
  };
}

/**
 * Open loop: operations sent at a steady `rate` per second for `seconds`, whether or not earlier ones have
 * finished (as channels would), and the time from sending each to its appliedAt.
 */
export async function latencyAtRate(stack: BenchStack, rate: number, seconds: number) {
  const submitter = new Submitter(stack);
  const total = rate * seconds;
  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(submitter.submit());
  }
  // A submit refused under overload is a finding, not the end of the run: counted and reported.
  const failures = (await Promise.allSettled(inFlight)).filter((r) => r.status === 'rejected');
  const achievedRate = Math.round(total / ((performance.now() - started) / 1000));
  const applied = await submitter.appliedTimes(300_000);
  const latencies = submitter.sent.map((s, i) => applied[i]! - s.sentAt);
  return {
    offeredRate: rate,
    achievedRate,
    operations: total,
    failedSubmits: failures.length,
    ...(failures[0] ? { firstFailure: String(failures[0].reason).slice(0, 300) } : {}),
    ...percentiles(latencies),
  };
}
