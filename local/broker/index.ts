/**
 * Development Service Bus broker: the part of AMQP 1.0 that @azure/service-bus uses, in memory, on rhea.
 * Queues spring into existence on first use; `<queue>/$DeadLetterQueue` is each queue's dead-letter queue.
 */
import type { AddressInfo, Server, Socket } from 'node:net';

import {
  type Connection,
  type Container,
  create_container,
  type EventContext,
  type ServerConnectionOptions,
} from 'rhea';

import { seconds, settlesWithin } from '../deadline';
import { LinkRouter } from './links';
import { QueueRegistry } from './queue';

export interface DevBrokerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. Default 5672, where the SDK looks when the endpoint has no port. */
  port?: number;
  /** Default 30 000, as a Service Bus queue. */
  lockDurationMs?: number;
  /** Default 10, as a Service Bus queue. */
  maxDeliveryCount?: number;
  log?: (line: string) => void;
}

export interface DevBroker {
  readonly port: number;
  readonly connectionString: string;
  close(): Promise<void>;
}

/** Lock expiry and scheduled messages are driven by one timer; this is their resolution. */
const SWEEP_INTERVAL_MS = 100;

export async function startDevBroker(options: DevBrokerOptions = {}): Promise<DevBroker> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => {});
  const queues = new QueueRegistry({
    lockDurationMs: options.lockDurationMs ?? 30_000,
    maxDeliveryCount: options.maxDeliveryCount ?? 10,
    log,
  });
  const router = new LinkRouter(queues, log);
  const container = create_container({ id: 'dev-service-bus' });
  // The SDK authenticates with SASL ANONYMOUS (a key name but no password) and then a CBS token.
  const mechanisms = container.sasl_server_mechanisms as {
    enable_anonymous(): void;
    enable_plain(f: () => boolean): void;
  };
  mechanisms.enable_anonymous();
  mechanisms.enable_plain(() => true);
  const connections = new Set<Connection>();
  wireEvents(container, router, connections, log);

  const listenOptions = {
    host,
    port: options.port ?? 5672,
    // Outgoing deliveries stay in rhea's per-session buffer until settled, i.e. for as long as a message is
    // locked. The default of 2048 would stall a busy receiver; the buffer grows lazily, so be generous.
    session_buffer_size: { outgoing: 1 << 16 },
    // We accept or reject transfers ourselves, after enqueueing or failing to decode.
    receiver_options: { autoaccept: false },
    // rhea would also report an abandon ("modified") as "released", i.e. settle it twice.
    sender_options: { treat_modified_as_released: false },
  };
  const server = container.listen(listenOptions as unknown as ServerConnectionOptions);
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.on('error', (error) => log(`server error: ${error.message}`));

  const port = (server.address() as AddressInfo).port;
  const sweep = setInterval(() => {
    const now = Date.now();
    try {
      for (const queue of queues.all()) queue.sweep(now);
    } catch (error) {
      log(`sweep failed: ${describe(error)}`);
    }
  }, SWEEP_INTERVAL_MS);
  sweep.unref();

  const clientHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  const connectionString =
    `Endpoint=sb://${clientHost}:${port};SharedAccessKeyName=RootManageSharedAccessKey;` +
    'SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true';
  log(`listening on ${host}:${port}`);

  let closing: Promise<void> | undefined;
  return {
    port,
    connectionString,
    close: () => (closing ??= shutdown(server, sockets, connections, sweep, log)),
  };
}

/** How long clients get to answer our close frame before their sockets are cut. */
const CLOSE_GRACE_MS = 500;
/** How long the listener gets to close once every socket is cut (it needs no more than a tick). */
const LISTENER_CLOSE_MS = 1000;

async function shutdown(
  server: Server,
  sockets: Set<Socket>,
  connections: Set<Connection>,
  sweep: NodeJS.Timeout,
  log: (line: string) => void,
): Promise<void> {
  clearInterval(sweep);
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // amqp:connection:forced is what Service Bus sends when it drops a client; the SDK reconnects later.
  for (const connection of connections) {
    connection.close({ condition: 'amqp:connection:forced', description: 'The development broker is stopping.' });
  }
  const deadline = Date.now() + CLOSE_GRACE_MS;
  while (sockets.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  if (sockets.size > 0) log(`cut ${sockets.size} connection(s) still open ${CLOSE_GRACE_MS} ms after the close frame`);
  for (const socket of sockets) socket.destroy();
  // rhea only tears a connection down (heartbeat timers included) on socket 'end'/'error', which a
  // destroyed socket never emits.
  for (const connection of connections) (connection as unknown as { _disconnected(): void })._disconnected();
  if (!(await settlesWithin(closed, LISTENER_CLOSE_MS))) {
    console.warn(`development broker: its listener did not close within ${seconds(LISTENER_CLOSE_MS)}; going on`);
  }
}

type Handler = (context: EventContext) => void;

function wireEvents(
  container: Container,
  router: LinkRouter,
  connections: Set<Connection>,
  log: (line: string) => void,
): void {
  // rhea invokes handlers from process.nextTick and socket callbacks; an exception escaping one would take
  // the whole process down, so every handler is fenced.
  const on = (event: string, handler: Handler) =>
    container.on(event, (context: EventContext) => {
      try {
        handler(context);
      } catch (error) {
        log(`error handling ${event}: ${describe(error)}`);
      }
    });
  const peer = (connection: Connection) => (connection.container_id ? ` ${connection.container_id}` : '');

  on('connection_open', ({ connection }) => {
    connections.add(connection);
    log(`connection open${peer(connection)}`);
  });
  on('sender_open', ({ sender }) => sender && router.onSenderOpen(sender));
  on('receiver_open', ({ receiver }) => receiver && router.onReceiverOpen(receiver));
  on('sender_flow', ({ sender }) => sender && router.onSenderFlow(sender));
  on('message', (context) => router.onMessage(context));
  for (const outcome of ['accepted', 'rejected', 'modified', 'released'] as const) {
    on(outcome, ({ delivery }) => router.onOutcome(outcome, delivery));
  }
  on('sender_close', ({ sender }) => sender && router.onSenderClose(sender));
  on('session_close', ({ session }) => session && router.onSessionClose(session));
  const gone: Handler = ({ connection }) => {
    if (!connections.delete(connection)) return;
    router.onConnectionGone(connection);
    log(`connection closed${peer(connection)}`);
  };
  // A clean close raises connection_close only; a dropped socket raises disconnected only.
  on('connection_close', gone);
  on('disconnected', gone);
  // Without listeners rhea re-emits these as 'error' on the container, which would throw.
  for (const event of ['connection_error', 'session_error', 'sender_error', 'receiver_error']) {
    on(event, (context) => log(`${event}: ${describe(errorOf(context))}`));
  }
  container.on('protocol_error', (error: unknown) => log(`protocol error: ${describe(error)}`));
  container.on('error', (error: unknown) => log(`error: ${describe(error)}`));
}

function errorOf(context: EventContext): unknown {
  return context.sender?.error ?? context.receiver?.error ?? context.session?.error ?? context.connection.error;
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null) {
    const { condition, description } = error as { condition?: unknown; description?: unknown };
    if (condition || description) return `${String(condition)}: ${String(description)}`;
  }
  return String(error);
}
