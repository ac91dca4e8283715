import { describe, expect, it } from 'vitest';

import { applyChanges } from '../../shared/domain/changes';
import type { Customer } from '../../shared/domain/customer';
import type { Operation } from '../../shared/domain/operation';
import { runJob } from '../../shared/jobs';
import type { SyncContext } from '../../shared/operations/context';
import { handleDoorbell } from '../../shared/operations/doorbell-handler';
import { allOperations } from '../../shared/operations/list';
import { processCustomer } from '../../shared/operations/process';
import { readCustomerUpdates } from '../../shared/operations/queries';
import { type Accepted, submitCreate, submitEdit } from '../../shared/operations/submit';
import { person, type RecordingDoorbell, seededRandom, testContext } from '../support';

// A seed fixes the customers, their edits and the delivery plan; where faults land also depends on the order in
// which concurrent storage calls draw from it, so a failing seed is re-run to reproduce, not replayed step by step.
const random = seededRandom;

/**
 * Wraps every storage method the pipeline uses, and the broker (the doorbell sender), so that at random a call
 * fails before it reaches storage or the broker (a transient error) or after it succeeded (the process dies
 * between this step and the next: the write landed, the caller never learns). Returns a switch to turn faults
 * off for the drain, and the counts.
 */
function injectFaults(ctx: SyncContext, rnd: () => number, rate: number) {
  let on = true;
  const counts = { storage: 0, broker: 0 };
  const repos = [
    ctx.store.customers,
    ctx.store.emailClaims,
    ctx.store.accounts,
    ctx.store.accountNumbers,
    ctx.store.idempotency,
    ctx.store.feed,
    ctx.store.pending,
    ctx.store.feedInFlight,
    ctx.store.operationIndex,
    ctx.doorbell,
  ];
  for (const repo of repos) {
    const target = repo as unknown as Record<string, unknown>;
    const proto = Object.getPrototypeOf(repo) as Record<string, unknown>;
    const kind = repo === ctx.doorbell ? 'broker' : 'storage';
    for (const name of Object.getOwnPropertyNames(proto)) {
      const original = proto[name];
      if (name === 'constructor' || typeof original !== 'function') continue;
      if (original.constructor.name === 'AsyncGeneratorFunction') continue; // listings: left as they are
      target[name] = async (...args: unknown[]) => {
        const roll = on ? rnd() : 1;
        if (roll < rate / 2) {
          counts[kind]++;
          throw new Error(`injected fault before ${name}`);
        }
        const result: unknown = await (original as (...a: unknown[]) => Promise<unknown>).apply(repo, args);
        if (roll < rate) {
          counts[kind]++;
          throw new Error(`injected fault after ${name}`);
        }
        return result;
      };
    }
  }
  return { off: () => (on = false), counts };
}

const shuffle = <T>(items: T[], rnd: () => number) => {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
};

/**
 * CI runs a few seeds. The full run — thousands of operations across hundreds of customers:
 * `FAULT_SEEDS=10 FAULT_CUSTOMERS=300 FAULT_REPORT=1 npx vitest run test/integration/faults.test.ts`.
 */
const SEEDS = Array.from({ length: Number(process.env.FAULT_SEEDS ?? 3) }, (_, i) => i + 1);
const CUSTOMERS = Number(process.env.FAULT_CUSTOMERS ?? 10);
const FAULT_RATE = Number(process.env.FAULT_RATE ?? 0.15);
/** Edits HQ refuses (an unknown customer group): they fail and hold back the customer's later edits. */
const REFUSED_RATE = 0.08;

describe('the pipeline under faults, duplicates, reordering and concurrency', () => {
  it.each(SEEDS)(
    'seed %i: every operation ends applied once, in order, or failed with a reason',
    { timeout: 30_000 + CUSTOMERS * 1000 },
    async (seed) => {
      const rnd = random(seed);
      const { ctx, doorbell } = await testContext({ retry: { maxAttempts: 1000, baseDelayMs: 0 } });
      const faults = injectFaults(ctx, rnd, FAULT_RATE);
      let operationsSubmitted = 0;

      // Submits under faults too. A channel that gets an error sends the same request again, with the same
      // Idempotency-Key, until it is accepted.
      const accounts: string[] = [];
      const untilAccepted = async (submit: () => Promise<Accepted>) => {
        for (;;) {
          try {
            return await submit();
          } catch (error) {
            if (!String(error).includes('injected fault')) throw error; // only faults we made are retried
          }
        }
      };
      const submitting = Array.from({ length: CUSTOMERS }, async (_, c) => {
        const channel = `ch-${c % 3}`;
        const customer = person({ phone: 'p0' });
        const created = await untilAccepted(() =>
          submitCreate(ctx, { channel, customer, idempotency: { key: `c${c}`, requestHash: customer.email } }),
        );
        const account = created.asyncCustomerAccount!;
        accounts.push(account);
        operationsSubmitted++;
        for (let e = 1; e <= 1 + Math.floor(rnd() * 5); e++) {
          const patch =
            rnd() < REFUSED_RATE ? { customerGroup: 'NoSuchGroup' } : { phone: `p${e}`, attributes: { edit: e } };
          const idempotency = { key: `c${c}-e${e}`, requestHash: JSON.stringify(patch) };
          await untilAccepted(() => submitEdit(ctx, { channel, account, patch, idempotency }));
          operationsSubmitted++;
        }
      });
      await Promise.all(submitting);

      // Deliveries: every doorbell rung so far, shuffled (reordered), some twice (duplicates), some dropped
      // (lost), up to three processors on a customer at once (a lock that expired while its holder still ran).
      for (let wave = 0; wave < 4; wave++) {
        const deliveries = shuffle(
          doorbell.rung.splice(0).flatMap((d) => (rnd() < 0.1 ? [] : rnd() < 0.3 ? [d, d] : [d])),
          rnd,
        );
        for (let i = 0; i < deliveries.length; i += 16) {
          await Promise.all(
            deliveries.slice(i, i + 16).flatMap((d) =>
              Array.from({ length: 1 + Math.floor(rnd() * 3) }, () =>
                // Through the handler, as the queue trigger does: a doorbell's signed state is what the
                // first round starts from (gone stale by the time of most duplicates and late deliveries).
                handleDoorbell(ctx, message(d), { messageId: 'fault' }).catch(() => undefined),
              ),
            ),
          );
        }
      }
      faults.off();
      // Drain: the sync-pending job re-rings every customer left pending and finishes crashed rounds' feeds.
      const later = { ...ctx, clock: () => new Date(Date.now() + 10 * 60_000) };
      for (let round = 0; round < 5; round++) {
        await runJob(later, 'sync-pending-operations');
        for (const d of doorbell.rung.splice(0)) await processCustomer(ctx, d.customerKey, d.pending);
      }
      await runJob(later, 'sync-pending-operations');
      const injected = faults.counts.storage + faults.counts.broker;
      expect(injected).toBeGreaterThan(0);

      let synced = 0;
      const allOps: Operation[] = [];
      const hqAccounts = new Set<string>();
      for (const account of accounts) {
        const record = (await ctx.store.customers.getRecord(account))!.value;
        const ops: Operation[] = [];
        for (let seq = 1; seq < record.nextSeq; seq++) {
          const op = (await ctx.store.customers.getOperation(account, seq))?.value;
          expect(op, `${account} operation ${seq} exists (sequence numbers have no gaps)`).toBeDefined();
          ops.push(op!);
        }
        allOps.push(...ops);
        // Synced up to the first refused edit; that one Failed with its error; the rest Pending, saying why.
        const firstFailed = ops.findIndex((o) => o.status !== 'Synced');
        const applied = firstFailed < 0 ? ops : ops.slice(0, firstFailed);
        const held = firstFailed < 0 ? [] : ops.slice(firstFailed);
        if (held.length) {
          expect(held[0]).toMatchObject({ status: 'Failed', lastError: { code: 'CUSTOMER_GROUP_NOT_FOUND' } });
          for (const op of held.slice(1)) {
            expect(op).toMatchObject({ status: 'Pending', lastError: { code: 'WAITING_FOR_OPERATION' } });
          }
        }
        synced += applied.length;
        expect(record.appliedThrough).toBe(applied.length);
        expect(record.version).toBe(applied.length);
        // The HQ customer equals applying each successful operation once, in submission order.
        let expected: Customer | undefined;
        for (const op of applied) expected = applyChanges(expected, op.changes) as Customer;
        expect(record.customer).toEqual(expected);
        // One customer account, never two, and its index entry points back here.
        expect(hqAccounts.has(record.customerAccount!)).toBe(false);
        hqAccounts.add(record.customerAccount!);
        expect(await ctx.store.accounts.customerKeyOf(record.customerAccount!)).toBe(account);
        for (const op of ops) {
          // A complete history, in order: it starts Pending, its times never go back, and an applied
          // operation was applied exactly once, last.
          expect(op.history[0]?.status).toBe('Pending');
          const times = op.history.map((h) => h.at);
          expect(times).toEqual([...times].sort());
          expect(op.history.filter((h) => h.status === 'Synced')).toHaveLength(op.status === 'Synced' ? 1 : 0);
          if (op.status === 'Synced') {
            expect(op.history.at(-1)?.status).toBe('Synced');
            expect(op.customerAccount).toBe(record.customerAccount);
          }
        }
      }
      // No customer created twice: the retried creates found their first answer.
      expect(new Set(accounts).size).toBe(CUSTOMERS);
      // Every submission exists exactly once: the retries found their first answer.
      expect(allOps).toHaveLength(operationsSubmitted);

      // The feed holds every applied change exactly once.
      const items = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await readCustomerUpdates({ ...ctx, clock: () => new Date(Date.now() + 5000) }, cursor);
        items.push(...page.items);
        if (page.items.length === 0) break;
        cursor = page.cursor;
      }
      expect(items).toHaveLength(synced);

      // The audit listing shows every operation once, in the state it ended in.
      const listed = [];
      for await (const op of allOperations(ctx, { fields: [] })) listed.push(op);
      expect(listed).toHaveLength(allOps.length);
      const byId = new Map(allOps.map((o) => [o.operationId, o.status]));
      for (const item of listed) expect(item.status).toBe(byId.get(item.operationId));

      if (process.env.FAULT_REPORT) {
        console.log(
          `seed ${seed}: ${CUSTOMERS} customers, ${allOps.length} operations (${synced} Synced); ` +
            `${faults.counts.storage} storage and ${faults.counts.broker} broker faults injected`,
        );
      }
    },
  );
});

/** A rung doorbell as the queue delivers it (the recording's `at` is when it was scheduled, not part of it). */
const message = ({ at: _, ...doorbell }: RecordingDoorbell['rung'][number]) => doorbell;
