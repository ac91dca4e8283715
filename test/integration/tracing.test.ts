import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { context, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { inject } from 'vitest';

import { signDevToken } from '../../local/dev-token';
import { customerSchema } from '../../shared/domain/customer';
import { TokenVerifier } from '../../shared/http/auth';
import { CHANNELS, endpoint, json } from '../../shared/http/endpoint';
import { channelParams } from '../../shared/http/schemas';
import { ServiceBusDoorbell } from '../../shared/messaging/doorbell';
import type { SyncContext } from '../../shared/operations/context';
import { handleDoorbell } from '../../shared/operations/doorbell-handler';
import { submitCreate } from '../../shared/operations/submit';
import { inSpan, SpanKind } from '../../shared/telemetry/tracing';
import { person, testContext, uniqueName } from '../support';

// The endpoint wrapper builds on the composition root: here a dev-token verifier and the test's context.
const auth = {
  issuer: 'https://issuer.test/',
  audience: 'api://customer-sync',
  devSecret: 'a-test-secret-of-sufficient-length',
};
const root = vi.hoisted(() => ({ ctx: undefined as unknown }));
vi.mock('../../shared/app', () => ({
  services: () => ({
    verifier: new TokenVerifier({ ...auth, channelClaim: 'channel' }),
    context: async () => root.ctx,
  }),
}));

/**
 * A submit and its apply in one trace: the doorbell goes through the real Service Bus sender and the development
 * broker, and is handed to the doorbell handler with the application properties it arrived with, keys first
 * letter lower-cased as the Functions library gives them (`context.triggerMetadata.applicationProperties`).
 */
async function receive(client: ServiceBusClient, queue: string, count: number) {
  const receiver = client.createReceiver(queue, { receiveMode: 'receiveAndDelete' });
  const received: ServiceBusReceivedMessage[] = [];
  const deadline = Date.now() + 5_000;
  while (received.length < count && Date.now() < deadline) {
    received.push(...(await receiver.receiveMessages(count - received.length, { maxWaitTimeInMs: 500 })));
  }
  await receiver.close();
  return received;
}

const asTriggerMetadata = (properties: Record<string, unknown> | undefined) =>
  properties &&
  Object.fromEntries(Object.entries(properties).map(([key, value]) => [key[0]!.toLowerCase() + key.slice(1), value]));

async function sender() {
  const queue = uniqueName('q');
  const doorbell = new ServiceBusDoorbell(inject('serviceBusConnectionString'), queue);
  const { ctx } = await testContext({ doorbell });
  const client = new ServiceBusClient(inject('serviceBusConnectionString'));
  return {
    ctx,
    queue,
    received: (count: number) => receive(client, queue, count),
    close: async () => {
      await doorbell.close();
      await client.close();
    },
  };
}

describe('tracing off (no SDK registered)', () => {
  it('submits and applies as before, and the doorbell carries no trace context', async () => {
    const { ctx, received, close } = await sender();
    try {
      const accepted = await submitCreate(ctx, { channel: 'web', customer: person() });
      const [message] = await received(1);
      expect(message?.applicationProperties ?? {}).not.toHaveProperty('traceparent');
      const result = await handleDoorbell(ctx, message!.body, {
        messageId: String(message!.messageId),
        applicationProperties: asTriggerMetadata(message!.applicationProperties),
      });
      expect(result).toMatchObject({ applied: 1, operationIds: [accepted.operationId] });
    } finally {
      await close();
    }
  });
});

describe('tracing on (an in-memory exporter)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  beforeAll(() => {
    // The AsyncLocalStorage context manager and the W3C trace context propagator, as useAzureMonitor registers.
    provider.register();
  });
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  const spans = (name: string, customerKey?: string): ReadableSpan[] =>
    exporter
      .getFinishedSpans()
      .filter((s) => s.name === name && (customerKey === undefined || s.attributes.customerKey === customerKey));
  const one = (name: string, customerKey?: string): ReadableSpan => {
    const found = spans(name, customerKey);
    expect(found, `one ${name} span${customerKey ? ` of ${customerKey}` : ''}`).toHaveLength(1);
    return found[0]!;
  };
  const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

  it('puts a submit and its apply in one trace: submit → send → process customer → commit', async () => {
    exporter.reset();
    const { ctx, queue, received, close } = await sender();
    try {
      // Three channels' requests at once, each its own trace; their rings share the sender's group commit.
      const submits = await Promise.all(
        [1, 2, 3].map(() => inSpan('request', {}, () => submitCreate(ctx, { channel: 'web', customer: person() }))),
      );
      const messages = await received(3);
      expect(messages).toHaveLength(3);
      const traces = new Set<string>();
      for (const message of messages) {
        const customerKey = (message.body as { customerKey: string }).customerKey;
        const accepted = submits.find((s) => s.asyncCustomerAccount === customerKey)!;
        const submit = one('submit', customerKey);
        expect(submit.attributes).toMatchObject({
          operationId: accepted.operationId,
          customerKey,
          channel: 'web',
          operationType: 'Create',
        });
        const send = one(`send ${queue}`, customerKey);
        expect(send.spanContext().traceId).toBe(submit.spanContext().traceId);
        expect(parentOf(send)).toBe(submit.spanContext().spanId);
        // The message carries its own ring's context, whichever batch it went in.
        const traceparent = `00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`;
        expect(message.applicationProperties).toMatchObject({ traceparent, 'Diagnostic-Id': traceparent });

        await handleDoorbell(ctx, message.body, {
          messageId: String(message.messageId),
          applicationProperties: asTriggerMetadata(message.applicationProperties),
        });
        const process = one('process customer', customerKey);
        expect(process.spanContext().traceId).toBe(submit.spanContext().traceId);
        expect(parentOf(process)).toBe(send.spanContext().spanId);
        expect(process.attributes).toMatchObject({
          operationIds: [accepted.operationId],
          outcome: 'applied',
          applied: 1,
        });
        const commit = one('commit', customerKey);
        expect(parentOf(commit)).toBe(process.spanContext().spanId);
        expect(commit.attributes.operationIds).toEqual([accepted.operationId]);
        traces.add(submit.spanContext().traceId);
      }
      expect(traces.size).toBe(3);
    } finally {
      await close();
    }
  });

  it('makes a request a server span named by its route, continuing the caller’s traceparent, with the submit inside', async () => {
    exporter.reset();
    const { ctx, received, close } = await sender();
    root.ctx = ctx satisfies SyncContext;
    try {
      const create = endpoint({
        name: 'tracing-create',
        method: 'POST',
        route: 'channels/{channelId}/customers',
        summary: 'As channel-customers-create',
        access: CHANNELS,
        request: { params: channelParams, body: customerSchema },
        responses: { 202: { description: 'Accepted' } },
        handle: async ({ params, body, ctx }) =>
          json(202, await submitCreate(ctx, { channel: params.channelId, customer: body })),
      });
      const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
      const callerSpan = '00f067aa0ba902b7';
      const bytes = Buffer.from(JSON.stringify(person()));
      const token = signDevToken(auth.devSecret, {
        iss: auth.issuer,
        aud: auth.audience,
        roles: ['Channel'],
        channel: 'web',
      });
      const result = await create.trigger.handler(
        {
          method: 'POST',
          url: 'http://localhost/api/channels/web/customers',
          headers: new Headers({
            'content-type': 'application/json',
            authorization: `Bearer ${token}`,
            traceparent: `00-${callerTrace}-${callerSpan}-01`,
          }),
          params: { channelId: 'web' },
          query: new URLSearchParams(),
          arrayBuffer: async () =>
            bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
        },
        { error: () => undefined },
      );
      expect(result.status).toBe(202);
      const request = one('POST /api/channels/{channelId}/customers');
      expect(request.kind).toBe(SpanKind.SERVER);
      expect(request.spanContext().traceId).toBe(callerTrace);
      expect(parentOf(request)).toBe(callerSpan);
      expect(request.attributes).toMatchObject({
        'http.route': '/api/channels/{channelId}/customers',
        'http.response.status_code': 202,
        'url.path': '/api/channels/web/customers',
      });
      expect(parentOf(one('submit'))).toBe(request.spanContext().spanId);
      const [message] = await received(1);
      expect(String(message?.applicationProperties?.traceparent)).toContain(callerTrace);
    } finally {
      await close();
    }
  });

  it('gives each message of a group-committed batch the trace context of its own ring', async () => {
    exporter.reset();
    const queue = uniqueName('q');
    const doorbell = new ServiceBusDoorbell(inject('serviceBusConnectionString'), queue);
    const client = new ServiceBusClient(inject('serviceBusConnectionString'));
    try {
      // Rung in one tick from four traces: the first ring starts a send, the other three wait and go as one batch.
      const keys = ['TRACE-A', 'TRACE-B', 'TRACE-C', 'TRACE-D'];
      await Promise.all(keys.map((customerKey) => inSpan('request', {}, () => doorbell.ring([{ customerKey }]))));
      const messages = await receive(client, queue, keys.length);
      expect(messages).toHaveLength(keys.length);
      for (const message of messages) {
        const customerKey = (message.body as { customerKey: string }).customerKey;
        const send = one(`send ${queue}`, customerKey);
        expect(message.applicationProperties?.traceparent).toBe(
          `00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`,
        );
      }
      expect(new Set(messages.map((m) => m.applicationProperties?.traceparent)).size).toBe(keys.length);
    } finally {
      await doorbell.close();
      await client.close();
    }
  });

  it('starts a trace of its own for a doorbell without trace context, and names a message that is not a doorbell', async () => {
    exporter.reset();
    const { ctx } = await testContext();
    await handleDoorbell(ctx, 'not json', { messageId: 'm-1', applicationProperties: { traceparent: 'garbage' } });
    const process = one('process customer');
    expect(process.parentSpanContext).toBeUndefined();
    expect(process.attributes).toMatchObject({ outcome: 'dead-lettered', 'messaging.message.id': 'm-1' });
  });

  it('continues a doorbell that carries only Diagnostic-Id (as the Functions library names it: diagnostic-Id)', async () => {
    exporter.reset();
    const { ctx } = await testContext();
    const sent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await handleDoorbell(
      ctx,
      { customerKey: 'ASYNC-NOSUCHONE' },
      { messageId: 'm-2', applicationProperties: { 'diagnostic-Id': sent } },
    );
    const process = one('process customer');
    expect(process.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(parentOf(process)).toBe('b7ad6b7169203331');
    expect(process.attributes).toMatchObject({ customerKey: 'ASYNC-NOSUCHONE', outcome: 'nothing to apply' });
  });
});
