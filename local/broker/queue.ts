import { randomUUID } from 'node:crypto';

import { type AmqpMessage, amqpTypes, codec } from './amqp';
import { Deque, MinHeap } from './collections';

export interface StoredMessage {
  readonly seq: number;
  amqp: AmqpMessage;
  enqueuedAt: number;
  /** Epoch ms after which the message is dropped unread (header ttl); Infinity without a ttl. */
  expiresAt: number;
  scheduledAt: number;
  /** Failed delivery attempts so far; sent as the AMQP header delivery-count, which the SDK shows as-is. */
  deliveryCount: number;
  state: 'scheduled' | 'ready' | 'locked' | 'gone';
}

export interface Lock {
  readonly token: string;
  readonly message: StoredMessage;
  readonly owner: object;
  expiresAt: number;
}

/** A receiving link as the queue sees it; implemented on top of rhea in links.ts. */
export interface Consumer {
  readonly peekLock: boolean;
  /** Locks are released when this goes away (the AMQP connection). */
  readonly owner: object;
  /** How many more messages may be sent right now (link credit not yet used). */
  available(): number;
  deliver(message: StoredMessage, lock: Lock | undefined): void;
  /** Called after every dispatch round; answers a pending drain once nothing more can be sent. */
  afterPump(): void;
}

export type Settlement =
  | { kind: 'complete' }
  | { kind: 'release' }
  | { kind: 'abandon'; properties?: Record<string, unknown> }
  | { kind: 'deadLetter'; properties?: Record<string, unknown> }
  | { kind: 'defer' };

export type SettleResult = 'ok' | 'lock-lost' | 'not-supported';

export interface QueueOptions {
  lockDurationMs: number;
  maxDeliveryCount: number;
  log: (line: string) => void;
}

const SCHEDULED_ENQUEUE_TIME = 'x-opt-scheduled-enqueue-time';

export class Queue {
  /** Every live message (scheduled, ready or locked) by sequence number, for peek and cancel. */
  private readonly messages = new Map<number, StoredMessage>();
  private readonly ready = new Deque<StoredMessage>();
  /** Abandoned and expired messages go back to their place in line, ahead of newer ones, as in Service Bus. */
  private readonly returned = new MinHeap<StoredMessage>((a, b) => a.seq < b.seq);
  private readonly scheduled = new MinHeap<StoredMessage>(
    (a, b) => a.scheduledAt < b.scheduledAt || (a.scheduledAt === b.scheduledAt && a.seq < b.seq),
  );
  /**
   * Every lock lasts lockDurationMs from when it was taken or renewed, and a renewal re-inserts, so Map
   * insertion order is expiry order: the sweep only looks at the front.
   */
  private readonly locks = new Map<string, Lock>();
  private readonly consumers: Consumer[] = [];
  private nextConsumer = 0;
  private nextSeq = 1;

  constructor(
    readonly name: string,
    private readonly options: QueueOptions,
    /** Undefined for a dead-letter sub-queue itself. */
    readonly deadLetterQueue?: Queue,
  ) {}

  enqueue(amqp: AmqpMessage, now: number): number {
    // Delivery annotations are per hop and delivery-count is ours to keep; neither belongs in the store.
    const { delivery_annotations: _da, delivery_count: _dc, ...stored } = amqp;
    // Service Bus gives id-less messages an id; the SDK's lock renewer keys its timers by it.
    stored.message_id ??= randomUUID().replace(/-/g, '');
    const scheduledAt = toEpochMs(stored.message_annotations?.[SCHEDULED_ENQUEUE_TIME]) ?? now;
    const message: StoredMessage = {
      seq: this.nextSeq++,
      amqp: stored,
      enqueuedAt: now,
      expiresAt: Infinity,
      scheduledAt,
      deliveryCount: 0,
      state: 'ready',
    };
    this.messages.set(message.seq, message);
    if (scheduledAt > now) {
      message.state = 'scheduled';
      this.scheduled.push(message);
    } else {
      this.activate(message, now);
      this.ready.push(message);
      this.pump(now);
    }
    return message.seq;
  }

  cancelScheduled(seq: number): void {
    const message = this.messages.get(seq);
    if (message?.state !== 'scheduled') return;
    // Left in the heap and skipped when it surfaces; cancelling is rare and the heap has no random delete.
    message.state = 'gone';
    this.messages.delete(seq);
  }

  peek(fromSeq: number, count: number): StoredMessage[] {
    const found: StoredMessage[] = [];
    for (const message of this.messages.values()) if (message.seq >= fromSeq) found.push(message);
    // Dead-lettered messages keep their original numbers, so the map is not always in sequence order.
    found.sort((a, b) => a.seq - b.seq);
    return found.slice(0, count);
  }

  addConsumer(consumer: Consumer, now: number): void {
    this.consumers.push(consumer);
    this.pump(now);
  }

  removeConsumer(consumer: Consumer): void {
    const index = this.consumers.indexOf(consumer);
    if (index >= 0) this.consumers.splice(index, 1);
  }

  /** Hands ready messages to consumers with credit, round-robin so concurrent receivers share the load. */
  pump(now: number): void {
    const consumers = this.consumers;
    let idle = 0;
    while (idle < consumers.length && (this.ready.length > 0 || this.returned.size > 0)) {
      const consumer = consumers[this.nextConsumer++ % consumers.length] as Consumer;
      if (consumer.available() <= 0) {
        idle++;
        continue;
      }
      idle = 0;
      const message = this.takeReady(now);
      if (!message) break;
      this.dispatch(message, consumer, now);
    }
    for (const consumer of consumers) consumer.afterPump();
  }

  settle(token: string, settlement: Settlement, now: number): SettleResult {
    const lock = this.locks.get(token);
    if (!lock) return 'lock-lost';
    if (settlement.kind === 'defer' || (settlement.kind === 'deadLetter' && !this.deadLetterQueue)) {
      return 'not-supported';
    }
    this.locks.delete(token);
    const message = lock.message;
    switch (settlement.kind) {
      case 'complete':
        this.remove(message);
        break;
      case 'release':
        this.requeue(message, now);
        break;
      case 'abandon':
        message.amqp = withApplicationProperties(message.amqp, settlement.properties);
        this.retry(message, now);
        break;
      case 'deadLetter':
        this.deadLetter(message, settlement.properties ?? {}, now);
        break;
    }
    return 'ok';
  }

  renewLock(token: string, now: number): number | undefined {
    const lock = this.locks.get(token);
    if (!lock) return undefined;
    this.locks.delete(token);
    lock.expiresAt = now + this.options.lockDurationMs;
    this.locks.set(token, lock);
    return lock.expiresAt;
  }

  /** Expires locks and activates due scheduled messages; driven by the broker's single timer. */
  sweep(now: number): void {
    for (const [token, lock] of this.locks) {
      if (lock.expiresAt > now) break;
      this.locks.delete(token);
      this.retry(lock.message, now);
    }
    for (let next = this.scheduled.peek(); next && next.scheduledAt <= now; next = this.scheduled.peek()) {
      this.scheduled.pop();
      if (next.state !== 'scheduled') continue;
      this.activate(next, now);
      this.ready.push(next);
    }
    this.pump(now);
  }

  /** A disconnected client can no longer settle, so its locks are released as if they had expired. */
  releaseLocksOf(owner: object, now: number): void {
    for (const [token, lock] of this.locks) {
      if (lock.owner !== owner) continue;
      this.locks.delete(token);
      this.retry(lock.message, now);
    }
  }

  private activate(message: StoredMessage, now: number): void {
    message.state = 'ready';
    message.enqueuedAt = now;
    const ttl = message.amqp.ttl;
    if (typeof ttl === 'number' && ttl > 0) message.expiresAt = now + ttl;
  }

  private takeReady(now: number): StoredMessage | undefined {
    for (;;) {
      const returned = this.returned.peek();
      const fresh = this.ready.peek();
      const message = returned && (!fresh || returned.seq < fresh.seq) ? this.returned.pop() : this.ready.shift();
      if (!message) return undefined;
      if (message.state !== 'ready') continue;
      if (message.expiresAt > now) return message;
      this.remove(message);
    }
  }

  private dispatch(message: StoredMessage, consumer: Consumer, now: number): void {
    if (!consumer.peekLock) {
      this.remove(message);
      consumer.deliver(message, undefined);
      return;
    }
    const lock: Lock = {
      token: randomUUID(),
      message,
      owner: consumer.owner,
      expiresAt: now + this.options.lockDurationMs,
    };
    message.state = 'locked';
    this.locks.set(lock.token, lock);
    consumer.deliver(message, lock);
  }

  private retry(message: StoredMessage, now: number): void {
    message.deliveryCount++;
    const max = this.options.maxDeliveryCount;
    if (this.deadLetterQueue && message.deliveryCount >= max) {
      this.deadLetter(
        message,
        {
          DeadLetterReason: 'MaxDeliveryCountExceeded',
          DeadLetterErrorDescription: `Message could not be consumed after ${max} delivery attempts.`,
        },
        now,
      );
    } else {
      this.requeue(message, now);
    }
  }

  private requeue(message: StoredMessage, now: number): void {
    message.state = 'ready';
    this.returned.push(message);
    this.pump(now);
  }

  private deadLetter(message: StoredMessage, properties: Record<string, unknown>, now: number): void {
    this.remove(message);
    this.deadLetterQueue?.adopt(message, withApplicationProperties(message.amqp, properties), now);
    this.options.log(`dead-lettered #${message.seq} from ${this.name}: ${String(properties.DeadLetterReason)}`);
  }

  /** Takes over a dead-lettered message; Service Bus keeps its sequence number and delivery count. */
  private adopt(from: StoredMessage, amqp: AmqpMessage, now: number): void {
    const message: StoredMessage = { ...from, amqp, state: 'ready', enqueuedAt: now, expiresAt: Infinity };
    this.messages.set(message.seq, message);
    this.ready.push(message);
    this.pump(now);
  }

  private remove(message: StoredMessage): void {
    message.state = 'gone';
    this.messages.delete(message.seq);
  }
}

/** The wire form of a stored message, with the annotations Service Bus stamps on every delivery. */
export function encodeMessage(message: StoredMessage, lockedUntil?: number): Buffer {
  const annotations: Record<string, unknown> = {
    ...message.amqp.message_annotations,
    'x-opt-enqueued-time': new Date(message.enqueuedAt),
    // Sequence numbers are AMQP longs; rhea would otherwise pick uint for small numbers.
    'x-opt-sequence-number': amqpTypes.wrap_long(message.seq),
    'x-opt-message-state': message.state === 'scheduled' ? 2 : 0,
  };
  if (lockedUntil !== undefined) annotations['x-opt-locked-until'] = new Date(lockedUntil);
  return codec.encode({ ...message.amqp, delivery_count: message.deliveryCount, message_annotations: annotations });
}

function withApplicationProperties(amqp: AmqpMessage, properties: Record<string, unknown> | undefined): AmqpMessage {
  if (!properties) return amqp;
  const merged = { ...amqp.application_properties };
  // The SDK sends unset reason/description as null; Service Bus leaves such properties out.
  for (const [key, value] of Object.entries(properties)) if (value !== null && value !== undefined) merged[key] = value;
  return { ...amqp, application_properties: merged };
}

function toEpochMs(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  return typeof value === 'number' ? value : undefined;
}

export class QueueRegistry {
  private readonly queues = new Map<string, Queue>();

  constructor(private readonly options: QueueOptions) {}

  /** Entity names are case-insensitive in Service Bus; `<queue>/$DeadLetterQueue` is the sub-queue. */
  get(address: string): Queue {
    const name = address.replace(/^\/+/, '').toLowerCase();
    const dlqSuffix = '/$deadletterqueue';
    if (name.endsWith(dlqSuffix)) {
      return this.get(name.slice(0, -dlqSuffix.length)).deadLetterQueue as Queue;
    }
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, this.options, new Queue(name + dlqSuffix, this.options));
      this.queues.set(name, queue);
      this.options.log(`created queue ${name}`);
    }
    return queue;
  }

  *all(): Iterable<Queue> {
    for (const queue of this.queues.values()) {
      yield queue;
      if (queue.deadLetterQueue) yield queue.deadLetterQueue;
    }
  }
}
