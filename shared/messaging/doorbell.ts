import type { TokenCredential } from '@azure/core-auth';
import { ServiceBusClient, type ServiceBusMessage, type ServiceBusSender } from '@azure/service-bus';

import type { Doorbell, DoorbellSender } from '../domain/doorbell';
import { attr, inSpan, SpanKind, traceProperties } from '../telemetry/tracing';

/** Doorbells as Service Bus messages on the customer operations queue. */
export class ServiceBusDoorbell implements DoorbellSender {
  private readonly client: ServiceBusClient;
  private readonly sender: ServiceBusSender;

  /**
   * A ring gives up after this long rather than holding an HTTP request for the SDK's minutes of retries:
   * the operation is already durable and listed as pending, so the sync-pending job rings again.
   */
  private readonly timeoutMs = 5000;

  /** A connection string (the local broker), or the namespace's host name and a token credential (Azure). */
  constructor(
    target: string | { fullyQualifiedNamespace: string; credential: TokenCredential },
    private readonly queueName: string,
  ) {
    this.client =
      typeof target === 'string'
        ? new ServiceBusClient(target)
        : new ServiceBusClient(target.fullyQualifiedNamespace, target.credential);
    this.sender = this.client.createSender(queueName);
  }

  /** Rings waiting for the send in flight; they go together in the next one (group commit, as for tables). */
  private queued: { rings: Ring[]; resolve(): void; reject(error: unknown): void }[] = [];
  private sending = false;

  /**
   * Each ring is a producer span (a child of the caller's, e.g. the submit's), and its messages carry that span's
   * context in their application properties (tracing.ts, traceProperties), taken here, when the ring is called:
   * the group commit below sends many callers' rings in one batch, and each message must continue the trace of
   * the operation that rang it, not of whichever ring happened to start the send.
   */
  async ring(doorbells: readonly Doorbell[], at?: Date): Promise<void> {
    if (doorbells.length === 0) return;
    const only = doorbells.length === 1 ? doorbells[0]!.customerKey : undefined;
    const attributes = {
      'messaging.system': 'servicebus',
      'messaging.operation.type': 'send',
      'messaging.destination.name': this.queueName,
      ...(only ? { [attr.customerKey]: only } : { 'messaging.batch.message_count': doorbells.length }),
    };
    await inSpan(`send ${this.queueName}`, { kind: SpanKind.PRODUCER, attributes }, async () => {
      const properties = traceProperties();
      const rings = doorbells.map((doorbell) => ({ doorbell, properties }));
      if (at) {
        const options = { abortSignal: AbortSignal.timeout(this.timeoutMs) };
        await this.sender.scheduleMessages(distinct(rings).map(toMessage), at, options);
        return;
      }
      await new Promise<void>((resolve, reject) => {
        this.queued.push({ rings, resolve, reject });
        if (!this.sending) void this.drain();
      });
    });
  }

  private async drain(): Promise<void> {
    this.sending = true;
    while (this.queued.length > 0) {
      const rings = this.queued;
      this.queued = [];
      try {
        await this.send(distinct(rings.flatMap((r) => r.rings)).map(toMessage));
        for (const r of rings) r.resolve();
      } catch (error) {
        for (const r of rings) r.reject(error);
      }
    }
    this.sending = false;
  }

  private async send(messages: ServiceBusMessage[]): Promise<void> {
    const options = { abortSignal: AbortSignal.timeout(this.timeoutMs) };
    if (messages.length === 1) {
      await this.sender.sendMessages(messages[0]!, options);
      return;
    }
    let batch = await this.sender.createMessageBatch(options);
    for (const message of messages) {
      if (batch.tryAddMessage(message)) continue;
      await this.sender.sendMessages(batch, options);
      batch = await this.sender.createMessageBatch(options);
      batch.tryAddMessage(message);
    }
    if (batch.count > 0) await this.sender.sendMessages(batch, options);
  }

  async check(): Promise<void> {
    // Opening a batch needs a live link to the queue, so it proves the broker answers.
    await this.sender.createMessageBatch({ abortSignal: AbortSignal.timeout(this.timeoutMs) });
  }

  async close(): Promise<void> {
    await this.sender.close();
    await this.client.close();
  }
}

/** A doorbell and the trace context of the ring that sent it (undefined with tracing off). */
interface Ring {
  doorbell: Doorbell;
  properties: Record<string, string> | undefined;
}

/**
 * One doorbell per customer; the latest pending ETag wins (an older one could only fail to clear), and with it
 * the latest ring's trace context: the processor then continues the latest submit's trace, and the earlier
 * submit's trace ends at its send span (its operation is applied in the same round, see process.ts).
 */
const distinct = (rings: readonly Ring[]): Ring[] => [
  ...new Map(rings.map((r) => [r.doorbell.customerKey, r])).values(),
];

const toMessage = ({ doorbell, properties }: Ring): ServiceBusMessage => ({
  body: doorbell,
  contentType: 'application/json',
  subject: 'customer-operations',
  ...(properties ? { applicationProperties: properties } : {}),
});
