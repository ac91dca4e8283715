import { isCoupled } from '../domain/coupling';
import type { SyncContext } from '../operations/context';
import { isAlive } from './records';
import { couplingSettings } from './settings';
import { matchOrInsert, SyncRun } from './sync';

export interface MatchRequest {
  /** HQ fields to match on, in priority order. */
  fields: string[];
  /** Insert a CRM row for a customer that matches none. */
  createIfNoMatch: boolean;
}

/**
 * The crm-match job (POST /api/couplings/match): couples every uncoupled HQ customer with the CRM row that
 * matches it on the given fields. An explicit run may couple again a pair whose coupling an operator removed
 * (automatic matching never does). It reads every customer record: an operator's bulk action, not a scheduled one.
 */
export async function crmMatch(ctx: SyncContext, request: MatchRequest) {
  const run = new SyncRun(ctx, couplingSettings(ctx), { job: 'crm-match' });
  const counts = { coupled: 0, created: 0, noMatch: 0, multipleMatches: 0, alreadyCoupled: 0 };
  const customers = [];
  for await (const record of ctx.store.customers.records()) if (isAlive(record)) customers.push(record);
  const complete = await run.each(customers, async (hq) => {
    const stored = await ctx.store.syncRecords.get(hq.customerKey);
    if (isCoupled(stored?.value)) {
      counts.alreadyCoupled++;
      return;
    }
    const outcome = await matchOrInsert(run, hq, stored, { fields: request.fields, insert: request.createIfNoMatch });
    counts[outcome === 'inserted' ? 'created' : outcome]++;
  });
  const message = complete
    ? `Matched ${customers.length} customers on ${request.fields.join(', ')}.`
    : 'Stopped: the run spent its time budget; run it again to match the rest.';
  return { counts, message };
}
