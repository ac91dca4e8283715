/**
 * Binds AMQP links to queues: what each attach means for Service Bus (entity, $management, $cbs), how
 * transfers, dispositions and flow frames on them map onto queue operations.
 */
import type { Connection, Delivery, EventContext, Receiver, Sender, Session } from 'rhea';

import {
  acceptAttach,
  addressOf,
  type AmqpError,
  type AmqpMessage,
  codec,
  deliveryTagFor,
  LOCK_LOST,
  lockTokenFromTag,
  type SenderInternals,
  settle,
} from './amqp';
import { handleManagement, isRecord, type ManagementResponse } from './management';
import {
  type Consumer,
  encodeMessage,
  type Lock,
  type Queue,
  type QueueRegistry,
  type Settlement,
  type StoredMessage,
} from './queue';

/** message-format of an SDK batch: the body's data sections each hold one complete encoded message. */
const BATCH_FORMAT = 0x80013700;
const MANAGEMENT_SUFFIX = '/$management';
const CBS = '$cbs';

type Route = { kind: 'queue'; queue: Queue } | { kind: 'management'; queue: Queue } | { kind: 'cbs' };

class LinkConsumer implements Consumer {
  readonly peekLock: boolean;
  /** Transfers handed to rhea; it counts them against credit only when it writes them, one tick later. */
  private sent = 0;

  constructor(
    readonly link: SenderInternals,
    readonly queue: Queue,
  ) {
    // snd-settle-mode "settled" is how the SDK asks for receive-and-delete.
    this.peekLock = link.local.attach.snd_settle_mode !== 1;
    // rhea only echoes a drain while credit is left, but the SDK waits for `receiver_drained` even when the
    // credit was used up by messages, and closes the link if the echo never comes. Answer every drain.
    link._get_drain = () => this.echoDrain();
  }

  get owner(): Connection {
    return this.link.connection;
  }

  available(): number {
    const link = this.link;
    if (!link.is_open()) return 0;
    const credit = link.delivery_count + link.credit - this.sent;
    return Math.min(credit, link.session.outgoing.available());
  }

  deliver(message: StoredMessage, lock: Lock | undefined): void {
    this.sent++;
    const payload = encodeMessage(message, lock?.expiresAt);
    // The delivery tag is the lock token; receive-and-delete deliveries get rhea's default tag.
    this.link.send(payload, lock ? deliveryTagFor(lock.token) : undefined, 0);
  }

  afterPump(): void {
    if (!this.link._draining) return;
    this.link.issue_flow = true;
    this.link.connection._register();
  }

  private echoDrain(): boolean {
    const link = this.link;
    // Transfers still waiting for the peer's session window must go out before the drain is answered;
    // the broker's sweep calls afterPump again.
    if (!link._draining || this.sent !== link.delivery_count) return false;
    link.delivery_count += link.credit;
    link.credit = 0;
    this.sent = link.delivery_count;
    link._draining = false;
    return true;
  }
}

export class LinkRouter {
  private readonly routes = new WeakMap<object, Route>();
  private readonly consumers = new WeakMap<object, LinkConsumer>();
  private readonly consumersByConnection = new Map<Connection, Set<LinkConsumer>>();
  /** Per connection: request/response reply links, addressed by the `reply_to` of requests. */
  private readonly replyLinks = new WeakMap<Connection, Map<string, Sender>>();

  constructor(
    private readonly queues: QueueRegistry,
    private readonly log: (line: string) => void,
  ) {}

  /** The peer attached a receiver: we send on this link. */
  onSenderOpen(sender: Sender): void {
    acceptAttach(sender);
    const address = addressOf(sender.source);
    if (!address) {
      sender.close({ condition: 'amqp:invalid-field', description: 'A source address is required.' });
      return;
    }
    const route = this.route(address);
    if (route.kind !== 'queue') {
      this.replyLinksOf(sender.connection).set(sender.name, sender);
      const target = addressOf(sender.target);
      if (target) this.replyLinksOf(sender.connection).set(target, sender);
      return;
    }
    const consumer = new LinkConsumer(sender as SenderInternals, route.queue);
    this.consumers.set(sender, consumer);
    let set = this.consumersByConnection.get(sender.connection);
    if (!set) this.consumersByConnection.set(sender.connection, (set = new Set()));
    set.add(consumer);
    route.queue.addConsumer(consumer, Date.now());
    this.log(`receiver attached to ${route.queue.name} (${consumer.peekLock ? 'peek-lock' : 'receive-and-delete'})`);
  }

  /** The peer attached a sender: we receive on this link. */
  onReceiverOpen(receiver: Receiver): void {
    acceptAttach(receiver);
    const address = addressOf(receiver.target);
    if (!address) {
      receiver.close({ condition: 'amqp:invalid-field', description: 'A target address is required.' });
      return;
    }
    this.routes.set(receiver, this.route(address));
  }

  onSenderFlow(sender: Sender): void {
    this.consumers.get(sender)?.queue.pump(Date.now());
  }

  onMessage(context: EventContext & { format?: number }): void {
    const { receiver, delivery } = context;
    if (!receiver || !delivery) return;
    const route = this.routes.get(receiver);
    if (!route) return;
    if (route.kind === 'queue') {
      let messages: AmqpMessage[];
      try {
        messages = decodeTransfer(context.message, context.format ?? delivery.format);
      } catch (error) {
        delivery.reject({ condition: 'amqp:decode-error', description: describe(error) });
        return;
      }
      const now = Date.now();
      for (const message of messages) route.queue.enqueue(message, now);
      delivery.accept();
      return;
    }
    delivery.accept();
    const request = context.message as AmqpMessage | undefined;
    if (!request || Buffer.isBuffer(request)) return;
    let response: ManagementResponse;
    if (route.kind === 'cbs') {
      // Any token is good enough for local development.
      response = { status: 200, description: 'OK' };
    } else {
      try {
        response = handleManagement(route.queue, request, Date.now());
      } catch (error) {
        this.log(`management request on ${route.queue.name} failed: ${describe(error)}`);
        response = { status: 500, description: describe(error), condition: 'amqp:internal-error' };
      }
    }
    this.reply(receiver.connection, request, response);
  }

  /** The peer settled (or proposed an outcome for) one of our deliveries. */
  onOutcome(kind: 'accepted' | 'rejected' | 'modified' | 'released', delivery: Delivery | undefined): void {
    if (!delivery) return;
    const consumer = this.consumers.get(delivery.link);
    if (!consumer?.peekLock) return;
    const state = delivery.remote_state as OutcomeState | undefined;
    const settlement = settlementFor(kind, state);
    const token = lockTokenFromTag(delivery.tag);
    const result = token === undefined ? 'lock-lost' : consumer.queue.settle(token, settlement, Date.now());
    if (result === 'ok') {
      // Echo the outcome without an error: the SDK rejects the settle call when the state carries one.
      settle(delivery, echo(kind, state));
    } else {
      const error: AmqpError =
        result === 'lock-lost'
          ? LOCK_LOST
          : { condition: 'amqp:not-implemented', description: `${settlement.kind} is not supported here.` };
      settle(delivery, codec.rejected({ error }));
    }
  }

  onSenderClose(sender: Sender): void {
    const consumer = this.consumers.get(sender);
    if (consumer) this.dropConsumer(consumer);
    const replies = this.replyLinks.get(sender.connection);
    if (replies) for (const [key, link] of replies) if (link === sender) replies.delete(key);
  }

  /** Ending a session implicitly ends its links, without a detach for each. */
  onSessionClose(session: Session): void {
    for (const consumer of this.consumersByConnection.get(session.connection) ?? []) {
      if (consumer.link.session === session) this.dropConsumer(consumer);
    }
  }

  onConnectionGone(connection: Connection): void {
    const consumers = this.consumersByConnection.get(connection);
    this.consumersByConnection.delete(connection);
    this.replyLinks.delete(connection);
    for (const consumer of consumers ?? []) consumer.queue.removeConsumer(consumer);
    const now = Date.now();
    for (const queue of this.queues.all()) queue.releaseLocksOf(connection, now);
  }

  private dropConsumer(consumer: LinkConsumer): void {
    consumer.queue.removeConsumer(consumer);
    this.consumersByConnection.get(consumer.owner)?.delete(consumer);
  }

  private route(address: string): Route {
    if (address === CBS) return { kind: 'cbs' };
    if (address.toLowerCase().endsWith(MANAGEMENT_SUFFIX)) {
      return { kind: 'management', queue: this.queues.get(address.slice(0, -MANAGEMENT_SUFFIX.length)) };
    }
    return { kind: 'queue', queue: this.queues.get(address) };
  }

  private replyLinksOf(connection: Connection): Map<string, Sender> {
    let links = this.replyLinks.get(connection);
    if (!links) this.replyLinks.set(connection, (links = new Map()));
    return links;
  }

  private reply(connection: Connection, request: AmqpMessage, response: ManagementResponse): void {
    const replyTo = typeof request.reply_to === 'string' ? request.reply_to : undefined;
    const link = replyTo === undefined ? undefined : this.replyLinks.get(connection)?.get(replyTo);
    if (!link?.is_open()) {
      this.log(`dropping response: no reply link ${String(replyTo)}`);
      return;
    }
    const properties: Record<string, unknown> = {
      // CBS clients read the hyphenated keys, management clients the camel-case ones; send both.
      'status-code': response.status,
      'status-description': response.description,
      statusCode: response.status,
      statusDescription: response.description,
    };
    if (response.condition) properties['error-condition'] = response.condition;
    const payload = codec.encode({
      correlation_id: request.message_id,
      application_properties: properties,
      body: response.body,
    });
    const delivery = link.send(payload, undefined, 0);
    // Responses are fire-and-forget: pre-settle them so neither side tracks them.
    (delivery as { settled: boolean }).settled = true;
  }
}

interface OutcomeState {
  error?: { condition?: unknown; description?: unknown; info?: unknown };
  message_annotations?: unknown;
  undeliverable_here?: boolean;
  delivery_failed?: boolean;
}

function settlementFor(kind: string, state: OutcomeState | undefined): Settlement {
  switch (kind) {
    case 'accepted':
      return { kind: 'complete' };
    case 'released':
      return { kind: 'release' };
    case 'modified': {
      // The SDK's defer is "modified, undeliverable here"; abandon is plain modified.
      if (state?.undeliverable_here) return { kind: 'defer' };
      const properties = isRecord(state?.message_annotations) ? state.message_annotations : undefined;
      return { kind: 'abandon', properties };
    }
    default: {
      // Service Bus dead-letters on any rejection; the SDK puts reason and description into error.info.
      const info = state?.error?.info;
      return { kind: 'deadLetter', properties: isRecord(info) ? info : {} };
    }
  }
}

function echo(kind: string, state: OutcomeState | undefined) {
  switch (kind) {
    case 'accepted':
      return codec.accepted();
    case 'released':
      return codec.released();
    case 'modified':
      return codec.modified({ delivery_failed: state?.delivery_failed, undeliverable_here: state?.undeliverable_here });
    default:
      return codec.rejected();
  }
}

function decodeTransfer(message: unknown, format: number): AmqpMessage[] {
  if (format === 0) {
    if (!isRecord(message)) throw new Error('undecodable message');
    return [message as AmqpMessage];
  }
  if (format !== BATCH_FORMAT || !Buffer.isBuffer(message)) throw new Error(`unsupported message-format ${format}`);
  const body = codec.decode(message).body as { typecode?: number; content?: unknown; multiple?: boolean } | undefined;
  if (body?.typecode !== 0x75) throw new Error('a batch must carry data sections');
  const sections = body.multiple ? (body.content as unknown[]) : [body.content];
  return sections.map((section) => {
    if (!Buffer.isBuffer(section)) throw new Error('a batch data section must be binary');
    return codec.decode(section);
  });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
