import { connect as tcpConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  isServiceBusError,
  ServiceBusClient,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
} from '@azure/service-bus';
import { create_container } from 'rhea';
import { describe, expect, it } from 'vitest';

import { type DevBrokerOptions, startDevBroker } from '../../local/broker';

const QUEUE = 'customers';

/** Starts a broker on a free port plus an SDK client against it, and tears both down afterwards. */
async function withBroker(
  options: DevBrokerOptions,
  run: (client: ServiceBusClient, connectionString: string, log: string[]) => Promise<void>,
): Promise<void> {
  const log: string[] = [];
  const broker = await startDevBroker({ port: 0, log: (line) => log.push(line), ...options });
  const client = new ServiceBusClient(broker.connectionString, { retryOptions: { maxRetries: 1 } });
  try {
    await run(client, broker.connectionString, log);
  } finally {
    await client.close();
    await broker.close();
  }
}

const portOf = (connectionString: string) => Number(/:(\d+);/.exec(connectionString)?.[1]);

async function receiveAll(receiver: ServiceBusReceiver, count: number, maxWaitTimeInMs = 2_000) {
  const received: ServiceBusReceivedMessage[] = [];
  const deadline = Date.now() + maxWaitTimeInMs;
  while (received.length < count && Date.now() < deadline) {
    received.push(...(await receiver.receiveMessages(count - received.length, { maxWaitTimeInMs: 500 })));
  }
  return received;
}

describe('development Service Bus broker', () => {
  it('delivers single and batched messages in send order with broker annotations', async () => {
    await withBroker({}, async (client) => {
      const sender = client.createSender(QUEUE);
      await sender.sendMessages({ body: { n: 0 }, messageId: 'm-0', applicationProperties: { kind: 'single' } });
      const batch = await sender.createMessageBatch();
      for (let n = 1; n <= 3; n++) {
        expect(
          batch.tryAddMessage({ body: { n }, messageId: `m-${n}`, applicationProperties: { kind: 'batch' } }),
        ).toBe(true);
      }
      await sender.sendMessages(batch);

      const receiver = client.createReceiver(QUEUE);
      const before = Date.now();
      const messages = await receiveAll(receiver, 4);

      expect(messages.map((m) => m.body)).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }]);
      expect(messages.map((m) => m.messageId)).toEqual(['m-0', 'm-1', 'm-2', 'm-3']);
      expect(messages.map((m) => m.applicationProperties?.kind)).toEqual(['single', 'batch', 'batch', 'batch']);
      const sequenceNumbers = messages.map((m) => m.sequenceNumber?.toNumber() ?? 0);
      expect(sequenceNumbers).toEqual([...sequenceNumbers].sort((a, b) => a - b));
      for (const message of messages) {
        expect(message.deliveryCount).toBe(0);
        expect(message.enqueuedTimeUtc?.getTime()).toBeLessThanOrEqual(Date.now());
        expect(message.lockedUntilUtc?.getTime()).toBeGreaterThan(before);
        expect(message.lockToken).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      }
    });
  });

  it('answers drain requests, so receiveMessages returns what is there and keeps its link', async () => {
    await withBroker({}, async (client, _connectionString, log) => {
      await client.createSender(QUEUE).sendMessages([{ body: 1 }, { body: 2 }]);
      const receiver = client.createReceiver(QUEUE);

      const first = await receiver.receiveMessages(10, { maxWaitTimeInMs: 300 });
      expect(first.map((m) => m.body)).toEqual([1, 2]);
      expect(await receiver.receiveMessages(5, { maxWaitTimeInMs: 100 })).toEqual([]);
      expect(await receiver.receiveMessages(5, { maxWaitTimeInMs: 100 })).toEqual([]);
      // The SDK closes a receive link whose drain goes unanswered and attaches a new one next time.
      expect(log.filter((line) => line.startsWith('receiver attached'))).toHaveLength(1);
    });
  });

  it('answers a drain even when the messages it had in flight used up all the credit', async () => {
    await withBroker({}, async (client, connectionString) => {
      await client.createSender(QUEUE).sendMessages({ body: 'only one' });
      // What a batching receiver does when its wait ends just as messages arrive: drain with credit that
      // the broker has already spent. rhea alone would not answer, and the SDK would drop its link.
      const receivedBeforeDrained = await new Promise<number>((resolve, reject) => {
        const connection = create_container().connect({ port: portOf(connectionString), reconnect: false });
        const receiver = connection.open_receiver({ source: { address: QUEUE }, credit_window: 0, autoaccept: false });
        let received = 0;
        receiver.on('message', () => received++);
        receiver.once('receiver_open', () => {
          receiver.add_credit(1);
          receiver.drain_credit();
        });
        receiver.once('receiver_drained', () => {
          resolve(received);
          connection.close();
        });
        setTimeout(() => reject(new Error('drain was not answered')), 2_000);
      });
      expect(receivedBeforeDrained).toBe(1);
    });
  });

  it('removes a completed message from the queue', async () => {
    await withBroker({}, async (client) => {
      await client.createSender(QUEUE).sendMessages({ body: 'done' });
      const receiver = client.createReceiver(QUEUE);
      const [message] = await receiveAll(receiver, 1);
      await receiver.completeMessage(message!);

      expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toEqual([]);
      expect(await receiver.peekMessages(10, { fromSequenceNumber: undefined })).toEqual([]);
    });
  });

  it('redelivers an abandoned message with deliveryCount + 1 and the modified properties', async () => {
    await withBroker({}, async (client) => {
      await client.createSender(QUEUE).sendMessages({ body: 'retry me', applicationProperties: { attempt: 'none' } });
      const receiver = client.createReceiver(QUEUE);
      const [first] = await receiveAll(receiver, 1);
      await receiver.abandonMessage(first!, { attempt: 'first' });

      const [second] = await receiveAll(receiver, 1);
      expect(second?.body).toBe('retry me');
      expect(second?.deliveryCount).toBe(1);
      expect(second?.applicationProperties?.attempt).toBe('first');
      expect(second?.sequenceNumber?.toNumber()).toBe(first?.sequenceNumber?.toNumber());
    });
  });

  it('moves a dead-lettered message to the dead-letter queue with its reason and description', async () => {
    await withBroker({}, async (client) => {
      await client.createSender(QUEUE).sendMessages({ body: 'poison', messageId: 'p-1' });
      const receiver = client.createReceiver(QUEUE);
      const [message] = await receiveAll(receiver, 1);
      await receiver.deadLetterMessage(message!, {
        deadLetterReason: 'ValidationFailed',
        deadLetterErrorDescription: 'customer number missing',
      });

      expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toEqual([]);
      const dlq = client.createReceiver(QUEUE, { subQueueType: 'deadLetter' });
      const [dead] = await receiveAll(dlq, 1);
      expect(dead?.messageId).toBe('p-1');
      expect(dead?.deadLetterReason).toBe('ValidationFailed');
      expect(dead?.deadLetterErrorDescription).toBe('customer number missing');
      await dlq.completeMessage(dead!);
    });
  });

  it('dead-letters a message as MaxDeliveryCountExceeded once it has been abandoned maxDeliveryCount times', async () => {
    await withBroker({ maxDeliveryCount: 3 }, async (client) => {
      await client.createSender(QUEUE).sendMessages({ body: 'always fails' });
      const receiver = client.createReceiver(QUEUE);
      for (let attempt = 0; attempt < 3; attempt++) {
        const [message] = await receiveAll(receiver, 1);
        expect(message?.deliveryCount).toBe(attempt);
        await receiver.abandonMessage(message!);
      }

      expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toEqual([]);
      const [dead] = await receiveAll(client.createReceiver(QUEUE, { subQueueType: 'deadLetter' }), 1);
      expect(dead?.body).toBe('always fails');
      expect(dead?.deadLetterReason).toBe('MaxDeliveryCountExceeded');
    });
  });

  it('redelivers a message whose lock expired, and rejects settling it with the stale lock as MessageLockLost', async () => {
    await withBroker({ lockDurationMs: 300 }, async (client) => {
      await client.createSender(QUEUE).sendMessages({ body: 'slow consumer' });
      const receiver = client.createReceiver(QUEUE, { maxAutoLockRenewalDurationInMs: 0 });
      const [first] = await receiveAll(receiver, 1);
      await sleep(500);

      const [second] = await receiveAll(receiver, 1);
      expect(second?.body).toBe('slow consumer');
      expect(second?.deliveryCount).toBe(1);
      const error: unknown = await receiver.completeMessage(first!).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isServiceBusError(error) && error.code).toBe('MessageLockLost');
      await receiver.completeMessage(second!);
    });
  });

  it('renewing a lock keeps the message locked past its original expiry', async () => {
    await withBroker({ lockDurationMs: 1_000 }, async (client) => {
      await client.createSender(QUEUE).sendMessages({ body: 'long job' });
      const receiver = client.createReceiver(QUEUE, { maxAutoLockRenewalDurationInMs: 0 });
      const [message] = await receiveAll(receiver, 1);
      const originalExpiry = message!.lockedUntilUtc!.getTime();
      await sleep(600);

      const renewed = await receiver.renewMessageLock(message!);
      expect(renewed.getTime()).toBeGreaterThan(originalExpiry);
      await sleep(600);
      expect(Date.now()).toBeGreaterThan(originalExpiry);
      // Completing only works while the lock holds; an expired one fails with MessageLockLost.
      await receiver.completeMessage(message!);
    });
  });

  it('processes messages concurrently with subscribe() and completes them', async () => {
    await withBroker({}, async (client) => {
      const sender = client.createSender(QUEUE);
      await sender.sendMessages(Array.from({ length: 20 }, (_, n) => ({ body: n })));
      const receiver = client.createReceiver(QUEUE);
      const seen: number[] = [];
      let inFlight = 0;
      let maxInFlight = 0;
      const done = new Promise<void>((resolve, reject) => {
        receiver.subscribe(
          {
            processMessage: async (message) => {
              maxInFlight = Math.max(maxInFlight, ++inFlight);
              await sleep(20);
              seen.push(message.body as number);
              inFlight--;
              if (seen.length === 20) resolve();
            },
            processError: async ({ error }) => reject(error),
          },
          { maxConcurrentCalls: 4 },
        );
      });
      await done;
      await receiver.close();

      expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, n) => n));
      expect(maxInFlight).toBeGreaterThan(1);
      expect(maxInFlight).toBeLessThanOrEqual(4);
      // subscribe() auto-completes after processMessage resolves.
      await sleep(100);
      expect(await client.createReceiver(QUEUE).peekMessages(30)).toEqual([]);
    });
  });

  it('holds a scheduled message back until its scheduled time, and drops a cancelled one', async () => {
    await withBroker({}, async (client) => {
      const sender = client.createSender(QUEUE);
      const due = new Date(Date.now() + 800);
      await sender.scheduleMessages({ body: 'later' }, due);
      const [cancelled] = await sender.scheduleMessages({ body: 'never' }, due);
      await sender.cancelScheduledMessages(cancelled!);
      await sender.sendMessages({ body: 'via annotation', scheduledEnqueueTimeUtc: due });

      const receiver = client.createReceiver(QUEUE);
      expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toEqual([]);
      const peeked = await receiver.peekMessages(10);
      expect(peeked.map((m) => [m.body, m.state])).toEqual([
        ['later', 'scheduled'],
        ['via annotation', 'scheduled'],
      ]);

      const messages = await receiveAll(receiver, 2, 3_000);
      expect(Date.now()).toBeGreaterThanOrEqual(due.getTime());
      expect(messages.map((m) => m.body)).toEqual(['later', 'via annotation']);
      expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 200 })).toEqual([]);
    });
  });

  it('peeks messages without locking them', async () => {
    await withBroker({}, async (client) => {
      await client.createSender(QUEUE).sendMessages([{ body: 'a' }, { body: 'b' }, { body: 'c' }]);
      const receiver = client.createReceiver(QUEUE);

      expect((await receiver.peekMessages(2)).map((m) => m.body)).toEqual(['a', 'b']);
      expect((await receiver.peekMessages(2)).map((m) => m.body)).toEqual(['c']);
      const received = await receiveAll(receiver, 3);
      expect(received.map((m) => [m.body, m.deliveryCount])).toEqual([
        ['a', 0],
        ['b', 0],
        ['c', 0],
      ]);
    });
  });

  it('releases the locks of a client that disconnects', async () => {
    await withBroker({}, async (client, connectionString) => {
      await client.createSender(QUEUE).sendMessages({ body: 'orphan' });
      const doomed = new ServiceBusClient(connectionString);
      await receiveAll(doomed.createReceiver(QUEUE), 1);
      await doomed.close();

      const [message] = await receiveAll(client.createReceiver(QUEUE), 1);
      expect(message?.body).toBe('orphan');
      expect(message?.deliveryCount).toBe(1);
    });
  });

  it('removes messages on delivery in receive-and-delete mode', async () => {
    await withBroker({}, async (client) => {
      await client.createSender(QUEUE).sendMessages([{ body: 1 }, { body: 2 }]);
      const receiver = client.createReceiver(QUEUE, { receiveMode: 'receiveAndDelete' });
      expect((await receiveAll(receiver, 2)).map((m) => m.body)).toEqual([1, 2]);
      expect(await receiver.peekMessages(10)).toEqual([]);
    });
  });

  it('survives garbage on the wire and answers unknown management operations with 501', async () => {
    await withBroker({}, async (client, connectionString) => {
      const port = portOf(connectionString);
      const unknownPerformative = Buffer.from([0, 0, 0, 12, 2, 0, 0, 0, 0x00, 0x53, 0xff, 0x45]);
      for (const garbage of [
        Buffer.from('GET / HTTP/1.1\r\n\r\n'),
        Buffer.concat([Buffer.from('AMQP\x00\x01\x00\x00', 'latin1'), unknownPerformative]),
      ]) {
        const socket = tcpConnect(port, '127.0.0.1');
        socket.on('error', () => {});
        await new Promise((resolve) => socket.once('connect', resolve));
        socket.write(garbage);
        await new Promise((resolve) => socket.once('close', resolve));
      }

      const status = await new Promise<unknown>((resolve, reject) => {
        const connection = create_container().connect({ host: '127.0.0.1', port, reconnect: false });
        const replyTo = 'reply-link';
        connection.open_receiver({ source: { address: `${QUEUE}/$management` }, name: replyTo });
        const sender = connection.open_sender({ target: { address: `${QUEUE}/$management` } });
        sender.once('sendable', () =>
          sender.send({
            message_id: 'req-1',
            reply_to: replyTo,
            body: null,
            application_properties: { operation: 'com.microsoft:no-such-thing' },
          }),
        );
        connection.on('message', ({ message }) => {
          resolve(message?.application_properties?.statusCode);
          connection.close();
        });
        connection.on('connection_error', reject);
      });
      expect(status).toBe(501);

      await client.createSender(QUEUE).sendMessages({ body: 'still alive' });
      expect((await receiveAll(client.createReceiver(QUEUE), 1)).map((m) => m.body)).toEqual(['still alive']);
    });
  });
});
