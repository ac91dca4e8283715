import { doorbellSchema } from '../domain/doorbell';
import type { SyncContext } from './context';
import { openState } from './doorbell-state';
import { processCustomer, type ProcessResult } from './process';

/**
 * Validates a queue message as a doorbell and processes that customer. A message that is not a doorbell is
 * dead-lettered at once — recorded with its reason in DeadLetters (see there why not the broker's queue) —
 * and the call returns, so the message is completed rather than retried: retrying cannot make it valid.
 */
export async function handleDoorbell(
  ctx: SyncContext,
  message: unknown,
  meta: { messageId: string },
): Promise<ProcessResult | undefined> {
  const parsed = doorbellSchema.safeParse(typeof message === 'string' ? tryJson(message) : message);
  if (!parsed.success) {
    const reason = `Not a customer doorbell: ${parsed.error.issues
      .map((i) => `${i.path.join('.') || 'body'}: ${i.message}`)
      .join('; ')}`;
    await ctx.store.deadLetters.add({
      messageId: meta.messageId,
      reason,
      body: bodyText(message),
      receivedAt: ctx.clock().toISOString(),
    });
    ctx.log(`Message ${meta.messageId} dead-lettered: ${reason}`);
    return undefined;
  }
  const { customerKey, pending } = parsed.data;
  return processCustomer(ctx, customerKey, pending, await openState(ctx, parsed.data));
}

/** The body as an operator can read it: text as is, bytes as base64, anything else as JSON. */
function bodyText(message: unknown): string {
  if (typeof message === 'string') return message;
  if (message instanceof Uint8Array) return `base64:${Buffer.from(message).toString('base64')}`;
  return JSON.stringify(message) ?? String(message);
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
