// Service Bus triggers through @azure/service-bus in peek-lock mode, settled like the extension with
// autoComplete: complete after success, abandon after a failure (so the broker redelivers and
// dead-letters at its max delivery count).
//
// The SDK has no prefetch option and gates concurrency only through link credit, so the receiver gets
// maxConcurrentCalls + prefetchCount credit and a local semaphore admits maxConcurrentCalls at a time:
// the surplus waits here, locked (and lock-renewed by the SDK) exactly like prefetched messages.
import { randomUUID } from 'node:crypto';

import {
  type ProcessErrorArgs,
  type RetryOptions,
  ServiceBusClient,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
} from '@azure/service-bus';

import type { InvocationRequest, LogLevel, RegisteredFunction, TypedData } from './core';
import { Tracker } from './invoke';
import { deadlines, type Shutdown } from './shutdown';

export interface ServiceBusFunction {
  readonly fn: RegisteredFunction;
  readonly connectionString: string;
  readonly queueName?: string;
  readonly topicName?: string;
  readonly subscriptionName?: string;
}

export interface ServiceBusOptions {
  readonly maxConcurrentCalls: number;
  readonly prefetchCount: number;
  readonly maxAutoLockRenewalDurationInMs: number;
  /** host.json `clientRetryOptions`, with the extension's defaults. */
  readonly retryOptions: RetryOptions;
}

type Invoke = (fn: RegisteredFunction, request: InvocationRequest) => Promise<unknown>;
type Log = (level: LogLevel, message: string, functionName: string) => void;

const restartDelayMs = 5000;

class Slots {
  #free: number;
  readonly #waiters: ((admitted: boolean) => void)[] = [];

  constructor(size: number) {
    this.#free = size;
  }

  acquire(): Promise<boolean> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release(): void {
    const next = this.#waiters.shift();
    if (next) next(true);
    else this.#free++;
  }

  /** Turns away everything still waiting (shutdown). */
  reject(): void {
    for (const waiter of this.#waiters.splice(0)) waiter(false);
  }
}

function bodyData(body: unknown): TypedData {
  if (typeof body === 'string') return { string: body };
  if (body instanceof Uint8Array) return { bytes: body };
  if (typeof body === 'number') return Number.isInteger(body) ? { int: body } : { double: body };
  return { json: JSON.stringify(body ?? null) };
}

function put(metadata: Record<string, TypedData>, key: string, value: unknown): void {
  if (value === undefined || value === null) return;
  if (typeof value === 'string') metadata[key] = { string: value };
  else if (typeof value === 'number') metadata[key] = { int: value };
  else if (value instanceof Date) metadata[key] = { string: value.toISOString() };
  else metadata[key] = { json: JSON.stringify(value) };
}

/** Trigger metadata under the extension's names; the library camel-cases them for `context.triggerMetadata`. */
function triggerMetadata(message: ServiceBusReceivedMessage): Record<string, TypedData> {
  const metadata: Record<string, TypedData> = {};
  put(metadata, 'MessageId', message.messageId === undefined ? undefined : String(message.messageId));
  // AMQP counts prior attempts (0 on first delivery) and the JS SDK passes that through; the extension
  // runs on the .NET SDK, which adds one, so functions see 1 on the first delivery.
  put(metadata, 'DeliveryCount', (message.deliveryCount ?? 0) + 1);
  put(metadata, 'EnqueuedTimeUtc', message.enqueuedTimeUtc);
  put(metadata, 'ExpiresAtUtc', message.expiresAtUtc);
  put(metadata, 'LockedUntilUtc', message.lockedUntilUtc);
  put(
    metadata,
    'SequenceNumber',
    message.sequenceNumber === undefined ? undefined : Number(message.sequenceNumber.toString()),
  );
  put(metadata, 'LockToken', message.lockToken);
  put(metadata, 'CorrelationId', message.correlationId === undefined ? undefined : String(message.correlationId));
  put(metadata, 'ContentType', message.contentType);
  put(metadata, 'Subject', message.subject);
  put(metadata, 'Label', message.subject);
  put(metadata, 'To', message.to);
  put(metadata, 'ReplyTo', message.replyTo);
  put(metadata, 'SessionId', message.sessionId);
  put(metadata, 'ApplicationProperties', message.applicationProperties ?? {});
  put(metadata, 'UserProperties', message.applicationProperties ?? {});
  return metadata;
}

class Pump {
  readonly #slots: Slots;
  readonly #tracker = new Tracker();
  #receiver: ServiceBusReceiver | undefined;
  #subscription: { close(): Promise<void> } | undefined;
  #restart: NodeJS.Timeout | undefined;
  #closing = false;

  constructor(
    private readonly target: ServiceBusFunction,
    private readonly client: ServiceBusClient,
    private readonly options: ServiceBusOptions,
    private readonly invoke: Invoke,
    private readonly log: Log,
  ) {
    this.#slots = new Slots(options.maxConcurrentCalls);
  }

  get entity(): string {
    const t = this.target;
    return t.queueName ?? `${t.topicName}/subscriptions/${t.subscriptionName}`;
  }

  start(): void {
    if (this.#closing) return;
    const receiverOptions = {
      receiveMode: 'peekLock' as const,
      maxAutoLockRenewalDurationInMs: this.options.maxAutoLockRenewalDurationInMs,
    };
    try {
      const { queueName, topicName, subscriptionName } = this.target;
      const receiver = queueName
        ? this.client.createReceiver(queueName, receiverOptions)
        : this.client.createReceiver(topicName as string, subscriptionName as string, receiverOptions);
      this.#receiver = receiver;
      this.#subscription = receiver.subscribe(
        {
          // Settled through the receiver that delivered it, even if a restart replaced it since.
          processMessage: (message) =>
            this.#tracker.run(() => this.#process(receiver, message), `message ${String(message.messageId)}`),
          processError: async (args) => this.#onError(args),
        },
        {
          autoCompleteMessages: false,
          maxConcurrentCalls: this.options.maxConcurrentCalls + this.options.prefetchCount,
        },
      );
    } catch (err) {
      this.log(
        'error',
        `receiver for "${this.entity}" failed to start: ${(err as Error).message}`,
        this.target.fn.name,
      );
      this.#scheduleRestart();
    }
  }

  // The SDK retries and reattaches on its own; only a receiver that ended up closed needs a new one.
  #onError(args: ProcessErrorArgs): void {
    this.log('warning', `receiver "${this.entity}" (${args.errorSource}): ${args.error.message}`, this.target.fn.name);
    if (this.#receiver?.isClosed) this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    if (this.#closing || this.#restart) return;
    this.#restart = setTimeout(() => {
      this.#restart = undefined;
      void this.#receiver?.close().catch(() => undefined);
      this.start();
    }, restartDelayMs);
  }

  async #process(receiver: ServiceBusReceiver, message: ServiceBusReceivedMessage): Promise<void> {
    if (!(await this.#slots.acquire())) {
      await this.#settle(receiver, message, false);
      return;
    }
    try {
      let succeeded = true;
      try {
        await this.invoke(this.target.fn, {
          invocationId: randomUUID(),
          functionId: this.target.fn.metadata.functionId,
          inputData: [{ name: this.target.fn.triggerName, data: bodyData(message.body) }],
          triggerMetadata: triggerMetadata(message),
        });
      } catch {
        succeeded = false; // logged by invoke
      }
      await this.#settle(receiver, message, succeeded);
    } finally {
      this.#slots.release();
    }
  }

  async #settle(receiver: ServiceBusReceiver, message: ServiceBusReceivedMessage, complete: boolean): Promise<void> {
    try {
      if (complete) await receiver.completeMessage(message);
      else await receiver.abandonMessage(message);
    } catch (err) {
      // Lock lost or link gone: the broker redelivers after the lock expires, which is the safe outcome.
      this.log(
        'warning',
        `could not ${complete ? 'complete' : 'abandon'} message ${String(message.messageId)}: ${(err as Error).message}`,
        this.target.fn.name,
      );
    }
  }

  /** Stops taking messages; buffered ones are abandoned, in-flight ones get `deadlines.drain` to finish and settle. */
  async close(shutdown: Shutdown): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#restart);
    const fn = this.target.fn.name;
    if (this.#subscription)
      await shutdown.step(`${fn}: stop receiving`, this.#subscription.close(), deadlines.stopReceiving);
    this.#slots.reject();
    await shutdown.step(
      `${fn}: messages in flight`,
      this.#tracker.idle(),
      deadlines.drain,
      () => `left unsettled, so redelivered once their locks expire: ${this.#tracker.running.join(', ')}`,
    );
    if (this.#receiver) await shutdown.step(`${fn}: receiver link`, this.#receiver.close(), deadlines.disconnect);
  }
}

export interface ServiceBusReceivers {
  close(shutdown: Shutdown): Promise<void>;
}

export function startServiceBusReceivers(
  functions: readonly ServiceBusFunction[],
  options: ServiceBusOptions,
  invoke: Invoke,
  log: Log,
): ServiceBusReceivers {
  const clients = new Map<string, ServiceBusClient>();
  const pumps = functions.map((target) => {
    let client = clients.get(target.connectionString);
    if (!client) {
      client = new ServiceBusClient(target.connectionString, { retryOptions: options.retryOptions });
      clients.set(target.connectionString, client);
    }
    return new Pump(target, client, options, invoke, log);
  });
  for (const pump of pumps) pump.start();

  return {
    async close(shutdown) {
      await Promise.all(pumps.map((p) => p.close(shutdown)));
      const clientsClosed = Promise.all([...clients.values()].map((c) => c.close()));
      await shutdown.step('Service Bus connections', clientsClosed, deadlines.disconnect);
    },
  };
}
