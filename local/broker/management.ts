/**
 * The `<entity>/$management` request/response node: the operations @azure/service-bus issues for peek,
 * schedule/cancel, lock renewal and settlement of messages whose receive link is gone.
 */
import { type AmqpMessage, amqpTypes, codec, LOCK_LOST, lockTokenFromUuid } from './amqp';
import { encodeMessage, type Queue, type Settlement } from './queue';

export interface ManagementResponse {
  status: number;
  description: string;
  condition?: string;
  body?: unknown;
}

const lockLost: ManagementResponse = { status: 410, ...LOCK_LOST };

const ok = (body?: unknown): ManagementResponse => ({ status: 200, description: 'OK', body });

const badRequest = (description: string): ManagementResponse => ({
  status: 400,
  description,
  condition: 'com.microsoft:argument-error',
});

export function handleManagement(queue: Queue, request: AmqpMessage, now: number): ManagementResponse {
  try {
    return perform(queue, request, now);
  } catch (error) {
    if (error instanceof TypeError) return badRequest(error.message);
    throw error;
  }
}

function perform(queue: Queue, request: AmqpMessage, now: number): ManagementResponse {
  const operation = request.application_properties?.operation;
  const body = isRecord(request.body) ? request.body : {};
  switch (operation) {
    case 'com.microsoft:renew-lock':
      return renewLocks(queue, body, now);
    case 'com.microsoft:peek-message':
      return peek(queue, body);
    case 'com.microsoft:schedule-message':
      return schedule(queue, body, now);
    case 'com.microsoft:cancel-scheduled-message':
      for (const seq of list(body['sequence-numbers'])) queue.cancelScheduled(toNumber(seq));
      return ok();
    case 'com.microsoft:update-disposition':
      return updateDisposition(queue, body, now);
    default:
      return {
        status: 501,
        description: `Operation ${String(operation)} is not supported by the development broker.`,
        condition: 'amqp:not-implemented',
      };
  }
}

function renewLocks(queue: Queue, body: Record<string, unknown>, now: number): ManagementResponse {
  const expirations: Date[] = [];
  for (const raw of list(body['lock-tokens'])) {
    const token = lockTokenFromUuid(raw);
    const until = token === undefined ? undefined : queue.renewLock(token, now);
    if (until === undefined) return lockLost;
    expirations.push(new Date(until));
  }
  return ok({ expirations });
}

function peek(queue: Queue, body: Record<string, unknown>): ManagementResponse {
  const from = toNumber(body['from-sequence-number'] ?? 1);
  const count = toNumber(body['message-count'] ?? 1);
  const found = queue.peek(from, count);
  // The SDK tests the camel-case `statusCode` for 204 ("nothing to peek") before reading the body.
  if (found.length === 0) return { status: 204, description: 'No Content', body: { messages: [] } };
  return ok({ messages: found.map((message) => ({ message: encodeMessage(message) })) });
}

function schedule(queue: Queue, body: Record<string, unknown>, now: number): ManagementResponse {
  const entries = list(body.messages);
  const decoded: AmqpMessage[] = [];
  for (const entry of entries) {
    const encoded = isRecord(entry) ? entry.message : undefined;
    if (!Buffer.isBuffer(encoded)) return badRequest('Each scheduled entry needs an encoded message.');
    decoded.push(codec.decode(encoded));
  }
  const seqs = decoded.map((message) => queue.enqueue(message, now));
  // An array of longs, as Service Bus returns; the SDK accepts numbers or 8-byte buffers.
  return ok({ 'sequence-numbers': amqpTypes.wrap_array(seqs, 0x81) });
}

const DISPOSITIONS: Record<string, Settlement['kind']> = {
  completed: 'complete',
  abandoned: 'abandon',
  suspended: 'deadLetter',
  defered: 'defer',
};

function updateDisposition(queue: Queue, body: Record<string, unknown>, now: number): ManagementResponse {
  const kind = DISPOSITIONS[String(body['disposition-status'])];
  if (!kind) return badRequest(`Unknown disposition-status ${String(body['disposition-status'])}.`);
  const properties = isRecord(body['properties-to-modify']) ? { ...body['properties-to-modify'] } : {};
  if (kind === 'deadLetter') {
    properties.DeadLetterReason = body['deadletter-reason'];
    properties.DeadLetterErrorDescription = body['deadletter-description'];
  }
  const settlement = { kind, properties } as Settlement;
  for (const raw of list(body['lock-tokens'])) {
    const token = lockTokenFromUuid(raw);
    const result = token === undefined ? 'lock-lost' : queue.settle(token, settlement, now);
    if (result === 'lock-lost') return lockLost;
    if (result === 'not-supported') {
      return { status: 501, description: `${kind} is not supported here.`, condition: 'amqp:not-implemented' };
    }
  }
  return ok();
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
}

/** AMQP longs beyond 2^53 arrive from rhea as 8-byte big-endian buffers. */
function toNumber(value: unknown): number {
  if (Buffer.isBuffer(value) && value.length === 8) return Number(value.readBigInt64BE());
  const n = Number(value);
  if (!Number.isFinite(n)) throw new TypeError(`expected a number, got ${String(value)}`);
  return n;
}
