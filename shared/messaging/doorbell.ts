import { ServiceBusClient, type ServiceBusMessage, type ServiceBusSender } from '@azure/service-bus';
import { z } from 'zod';

/**
 * A doorbell says "customer K may have operations to apply" — nothing more. The operations table is the
 * truth, so a duplicate, late, lost or reordered doorbell is harmless: the processor always reads what is
 * actually pending, in submission order.
 */
export const doorbellSchema = z.strictObject({
  customerKey: z.string().regex(/^[A-Z][A-Z0-9-]{2,62}$/, 'must be a customer key'),
});
export type Doorbell = z.infer<typeof doorbellSchema>;

export interface DoorbellSender {
  /** Rings now, or at `at` (a scheduled message) for a retry after a delay. */
  ring(customerKeys: readonly string[], at?: Date): Promise<void>;
  /** Throws if the broker cannot be reached (for the health endpoint). */
  check(): Promise<void>;
  close(): Promise<void>;
}

export class ServiceBusDoorbell implements DoorbellSender {
  private readonly client: ServiceBusClient;
  private readonly sender: ServiceBusSender;

  /**
   * A ring gives up after this long rather than holding an HTTP request for the SDK's minutes of retries:
   * the operation is already durable and listed as pending, so the sync-pending job rings again.
   */
  private readonly timeoutMs = 5000;

  constructor(connectionString: string, queueName: string) {
    this.client = new ServiceBusClient(connectionString);
    this.sender = this.client.createSender(queueName);
  }

  async ring(customerKeys: readonly string[], at?: Date): Promise<void> {
    const messages = [...new Set(customerKeys)].map(toMessage);
    if (messages.length === 0) return;
    const options = { abortSignal: AbortSignal.timeout(this.timeoutMs) };
    if (at) {
      await this.sender.scheduleMessages(messages, at, options);
      return;
    }
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

const toMessage = (customerKey: string): ServiceBusMessage => ({
  body: { customerKey } satisfies Doorbell,
  contentType: 'application/json',
  subject: 'customer-operations',
});
