import { createHmac, timingSafeEqual } from 'node:crypto';

import type { Doorbell } from '../domain/doorbell';
import type { Unapplied } from '../domain/ports';
import type { SyncContext } from './context';

/**
 * A doorbell may carry what its submit just wrote — the customer's record and its operations not yet applied,
 * with their ETags — which is everything a processing round would read first. The processor then applies
 * without reading. That is safe because the round commits under those ETags: a copy gone stale (a duplicate
 * delivery, another submit or an operator's edit since) fails the commit with 412, and the round reads and
 * starts again, as after any lost race.
 *
 * Anyone who may send to the queue could forge such a state, so it is signed with a key only this service holds
 * (SigningKeys: kept in its storage account). A state without a valid signature is ignored — the doorbell is
 * then a plain one — and so is a state that is not a customer's whole unapplied tail.
 */

/** Above this, a state is left out (the doorbell stays small; a Service Bus message holds 256 KiB). */
const MAX_STATE_CHARS = 32_768;

/** The doorbell's `state` and `sig` for what a submit wrote; nothing if it cannot or need not carry it. */
export async function sealState(ctx: SyncContext, known: Unapplied): Promise<Pick<Doorbell, 'state' | 'sig'>> {
  if (!isWholeTail(known)) return {};
  const state = JSON.stringify(known);
  if (state.length > MAX_STATE_CHARS) return {};
  try {
    return { state, sig: sign(await ctx.store.keys.doorbell(), known.record.value.customerKey, state) };
  } catch (error) {
    ctx.log(`Doorbell state not signed (the processor will read instead): ${String(error)}`);
    return {};
  }
}

/** The state a doorbell carries, if this service signed it for this customer; undefined otherwise. */
export async function openState(ctx: SyncContext, doorbell: Doorbell): Promise<Unapplied | undefined> {
  if (doorbell.state === undefined) return undefined;
  const expected = Buffer.from(sign(await ctx.store.keys.doorbell(), doorbell.customerKey, doorbell.state));
  const given = Buffer.from(doorbell.sig ?? '');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    ctx.log(`Doorbell for ${doorbell.customerKey} carries a state this service did not sign: ignored.`);
    return undefined;
  }
  const known = JSON.parse(doorbell.state) as Unapplied;
  return known.record.value.customerKey === doorbell.customerKey && isWholeTail(known) ? known : undefined;
}

const sign = (key: Uint8Array, customerKey: string, state: string) =>
  createHmac('sha256', key).update(`${customerKey}\n${state}`).digest('base64url');

/** Whether the operations are exactly those after the record's appliedThrough, so no read could add one. */
function isWholeTail({ record, operations }: Unapplied): boolean {
  const { appliedThrough, nextSeq } = record.value;
  return (
    operations.length > 0 &&
    operations.length === nextSeq - 1 - appliedThrough &&
    operations.every((op, i) => op.value.seq === appliedThrough + 1 + i)
  );
}
