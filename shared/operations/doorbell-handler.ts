import { doorbellSchema } from '../domain/doorbell';
import { attr, inSpan, remoteContext, SpanKind } from '../telemetry/tracing';
import type { SyncContext } from './context';
import { openState } from './doorbell-state';
import { processCustomer, type ProcessResult } from './process';

/** What the trigger knows of a message besides its body. */
export interface MessageMeta {
  messageId: string;
  /** The message's application properties: the trace context of the ring that sent it, if traced. */
  applicationProperties?: unknown;
}

/**
 * Validates a queue message as a doorbell and processes that customer. A message that is not a doorbell is
 * dead-lettered at once — recorded with its reason in DeadLetters (see there why not the broker's queue) —
 * and the call returns, so the message is completed rather than retried: retrying cannot make it valid.
 *
 * Processing is the span `process customer`, a child of the doorbell's send, so a submit and its apply are one
 * trace. A child rather than a link: a doorbell is rung by one submit (the sender keeps one per customer in a
 * batch, the latest), and the round it starts is that submit's work. A round may also apply the operations of
 * other submits of the customer that were accepted meanwhile; they are named in the span's `operationIds`, and
 * their own doorbells, arriving after, find nothing left (outcome `nothing to apply`) in their own traces. Links to
 * those traces would need each operation to store its submit's trace context, which costs every operation bytes.
 */
export function handleDoorbell(
  ctx: SyncContext,
  message: unknown,
  meta: MessageMeta,
): Promise<ProcessResult | undefined> {
  const attributes = {
    'messaging.system': 'servicebus',
    'messaging.operation.type': 'process',
    'messaging.message.id': meta.messageId,
  };
  const parent = remoteContext(meta.applicationProperties);
  return inSpan('process customer', { kind: SpanKind.CONSUMER, attributes, parent }, async (span) => {
    const result = await handle(ctx, message, meta);
    if (!span.isRecording()) return result;
    if (!result) {
      span.setAttribute(attr.outcome, 'dead-lettered');
      return result;
    }
    span.setAttributes({
      [attr.customerKey]: result.customerKey,
      [attr.operationIds]: result.operationIds,
      [attr.outcome]: outcomeOf(result),
      applied: result.applied,
      failed: result.failed,
      waiting: result.waiting,
    });
    return result;
  });
}

const outcomeOf = (r: ProcessResult): string =>
  r.retryAt && r.applied === 0
    ? 'retry scheduled'
    : r.applied + r.failed + r.waiting === 0
      ? 'nothing to apply'
      : [r.applied && 'applied', r.failed && 'failed', r.waiting && 'waiting'].filter(Boolean).join(', ');

async function handle(ctx: SyncContext, message: unknown, meta: MessageMeta): Promise<ProcessResult | undefined> {
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
    ctx.log(`Message dead-lettered: ${reason}`, { messageId: meta.messageId });
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
