import { doorbellSchema } from '../messaging/doorbell';
import type { SyncContext } from './context';
import { processCustomer, type ProcessResult } from './process';

export class InvalidMessageError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'InvalidMessageError';
  }
}

/** Validates a queue message as a doorbell and processes that customer. */
export async function handleDoorbell(
  ctx: SyncContext,
  message: unknown,
  meta: { messageId: string },
): Promise<ProcessResult> {
  const parsed = doorbellSchema.safeParse(typeof message === 'string' ? tryJson(message) : message);
  if (!parsed.success) {
    const reason = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
    ctx.log(`Message ${meta.messageId} is not a doorbell (${reason}); it will be dead-lettered.`);
    throw new InvalidMessageError(`Not a customer doorbell: ${reason}`);
  }
  return processCustomer(ctx, parsed.data.customerKey, parsed.data.pending);
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
