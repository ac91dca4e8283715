import { describe, expect, it } from 'vitest';

import { applyChanges } from '../../shared/domain/changes';
import type { Customer } from '../../shared/domain/customer';
import { runJob } from '../../shared/jobs';
import type { SyncContext } from '../../shared/operations/context';
import { allOperations } from '../../shared/operations/list';
import { processCustomer } from '../../shared/operations/process';
import { readCustomerUpdates } from '../../shared/operations/queries';
import { submitCreate, submitEdit } from '../../shared/operations/submit';
import { person, testContext } from '../support';

/** A small, seeded pseudo-random generator (mulberry32), so a failing run can be replayed. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Wraps every storage method the processor uses so that, at random, a call fails before it reaches storage
 * (a transient error) or after it succeeded (a crash between two writes: the write landed, the caller never
 * learns). Returns a switch to turn faults off for the drain.
 */
function injectFaults(ctx: SyncContext, rnd: () => number, rate: number) {
  let on = true;
  let injected = 0;
  const repos = [
    ctx.store.customers,
    ctx.store.emailClaims,
    ctx.store.accounts,
    ctx.store.feed,
    ctx.store.pending,
    ctx.store.feedInFlight,
    ctx.store.operationIndex,
  ];
  for (const repo of repos) {
    const target = repo as unknown as Record<string, unknown>;
    const proto = Object.getPrototypeOf(repo) as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(proto)) {
      const original = proto[name];
      if (name === 'constructor' || typeof original !== 'function') continue;
      if (original.constructor.name === 'AsyncGeneratorFunction') continue; // listings: left as they are
      target[name] = async (...args: unknown[]) => {
        const roll = on ? rnd() : 1;
        if (roll < rate / 2) {
          injected++;
          throw new Error(`injected fault before ${name}`);
        }
        const result: unknown = await (original as (...a: unknown[]) => Promise<unknown>).apply(repo, args);
        if (roll < rate) {
          injected++;
          throw new Error(`injected fault after ${name}`);
        }
        return result;
      };
    }
  }
  return { off: () => (on = false), count: () => injected };
}

/** CI runs a few seeds; `FAULT_SEEDS=200 FAULT_CUSTOMERS=30 npx vitest run test/integration/faults.test.ts` runs many. */
const SEEDS = Array.from({ length: Number(process.env.FAULT_SEEDS ?? 3) }, (_, i) => i + 1);
const CUSTOMERS = Number(process.env.FAULT_CUSTOMERS ?? 8);
const FAULT_RATE = Number(process.env.FAULT_RATE ?? 0.15);

describe('the pipeline under faults, duplicates and concurrency', () => {
  it.each(SEEDS)('seed %i: every operation ends applied once, in order, or failed with a reason', async (seed) => {
    const rnd = random(seed);
    const { ctx } = testContext({ retry: { maxAttempts: 1000, baseDelayMs: 0 } });
    const customers: { account: string; phones: string[] }[] = [];
    // Submits without faults: accepting is tested elsewhere; here the processor is under fire.
    for (let c = 0; c < CUSTOMERS; c++) {
      const accepted = await submitCreate(ctx, { channel: 'web', customer: person({ phone: 'p0' }) });
      const phones = ['p0'];
      for (let e = 1; e <= 1 + Math.floor(rnd() * 5); e++) {
        await submitEdit(ctx, {
          channel: 'web',
          account: accepted.asyncCustomerAccount!,
          patch: { phone: `p${e}`, attributes: { edit: e } },
        });
        phones.push(`p${e}`);
      }
      customers.push({ account: accepted.asyncCustomerAccount!, phones });
    }

    const faults = injectFaults(ctx, rnd, FAULT_RATE);
    // Duplicate and concurrent doorbells: up to three processors per customer at once, several waves.
    for (let wave = 0; wave < 4; wave++) {
      await Promise.all(
        customers.flatMap((c) =>
          Array.from({ length: 1 + Math.floor(rnd() * 3) }, () =>
            processCustomer(ctx, c.account).catch(() => undefined),
          ),
        ),
      );
    }
    faults.off();
    // Drain: the sync-pending job and redelivered doorbells eventually process everyone.
    for (let round = 0; round < 5; round++) {
      for (const c of customers) await processCustomer(ctx, c.account);
    }
    await runJob({ ...ctx, clock: () => new Date(Date.now() + 10 * 60_000) }, 'sync-pending-operations');
    expect(faults.count()).toBeGreaterThan(0);
    if (process.env.FAULT_REPORT) console.log(`seed ${seed}: ${faults.count()} faults injected`);

    for (const c of customers) {
      const record = (await ctx.store.customers.getRecord(c.account))!.value;
      const ops = [];
      for (let seq = 1; seq < record.nextSeq; seq++)
        ops.push((await ctx.store.customers.getOperation(c.account, seq))!.value);
      // Nothing was refused by HQ rules, and retries were unlimited: everything is applied exactly once.
      expect(ops.map((o) => o.status)).toEqual(ops.map(() => 'Synced'));
      expect(record.appliedThrough).toBe(ops.length);
      expect(record.version).toBe(ops.length);
      // The HQ customer equals applying each operation once, in submission order.
      let expected: Customer | undefined;
      for (const op of ops) expected = applyChanges(expected, op.changes) as Customer;
      expect(record.customer).toEqual(expected);
      expect(record.customer?.phone).toBe(c.phones.at(-1));
      // One customer account, and its index entry points back here.
      expect(await ctx.store.accounts.customerKeyOf(record.customerAccount!)).toBe(c.account);
      for (const op of ops) {
        expect(op.customerAccount).toBe(record.customerAccount);
        expect(op.history.at(-1)?.status).toBe('Synced');
        expect(op.history.filter((h) => h.status === 'Synced')).toHaveLength(1);
      }
    }

    // The feed holds every applied change exactly once.
    const items = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await readCustomerUpdates({ ...ctx, clock: () => new Date(Date.now() + 5000) }, cursor);
      items.push(...page.items);
      if (page.items.length === 0) break;
      cursor = page.cursor;
    }
    const totalOps = customers.reduce((n, c) => n + c.phones.length, 0);
    expect(items).toHaveLength(totalOps);

    // The audit listing shows every operation once, in the state it ended in.
    const listed = [];
    for await (const op of allOperations(ctx, { fields: [] })) listed.push(op);
    expect(listed).toHaveLength(totalOps);
    expect(new Set(listed.map((o) => o.operationId)).size).toBe(totalOps);
    expect(listed.map((o) => o.status)).toEqual(listed.map(() => 'Synced'));
  });
});
