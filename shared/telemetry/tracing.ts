import {
  type Attributes,
  type Context,
  context,
  INVALID_SPAN_CONTEXT,
  type Link,
  propagation,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';

/**
 * Tracing through the OpenTelemetry API only: shared/ never sees an SDK. Until one is registered (shared/app.ts
 * does so when APPLICATIONINSIGHTS_CONNECTION_STRING is set; a test registers its own) every call here is the
 * API's no-op: a span is a non-recording object that drops its attributes, context is not stored, and nothing
 * is written into messages. So the service pays nothing for tracing it has not asked for.
 *
 * Spans are few on purpose (a handful per customer operation): the request, the submit, the doorbell's send,
 * processing and its commit, and a CRM write. Storage requests have none of their own; the Azure SDK's and
 * Node's HTTP instrumentations are off (shared/app.ts) for the same reason.
 */
const tracer = trace.getTracer('customer-sync');

/**
 * Whether an SDK is registered. Without one the calls below return at once: the API's own no-op path still
 * allocates a span and a context per call (about 0.6 µs, against 0.02 µs for this check).
 */
const NO_SDK = new ProxyTracerProvider().getDelegate();
const tracing = (): boolean => {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NO_SDK;
};
const untraced = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

export { SpanKind, SpanStatusCode };
export type { Span };

/**
 * Attribute names: the glossary's, so that an App Insights query reads `customDimensions.operationId`,
 * `customDimensions.customerKey`, `customDimensions.jobName`.
 */
export const attr = {
  operationId: 'operationId',
  /** Every operation a processing round applied or settled. */
  operationIds: 'operationIds',
  customerKey: 'customerKey',
  channel: 'channel',
  operationType: 'operationType',
  jobName: 'jobName',
  crmTable: 'crmTable',
  crmId: 'crmId',
  outcome: 'outcome',
} as const;

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** The parent; by default the active span. */
  parent?: Context;
  links?: Link[];
}

/**
 * Runs `work` in a new span, made the active one for everything `work` awaits. A throw ends the span with
 * status Error and the exception recorded, and propagates.
 */
export function inSpan<T>(name: string, options: SpanOptions, work: (span: Span) => Promise<T>): Promise<T> {
  if (!tracing()) return work(untraced);
  return tracer.startActiveSpan(name, options, options.parent ?? context.active(), async (span) => {
    try {
      return await work(span);
    } catch (error) {
      failed(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Marks a span as failed by `error`. */
export function failed(span: Span, error: unknown): void {
  if (!span.isRecording()) return;
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}

/** The span of the work under way, if any. */
export const activeSpan = (): Span | undefined => trace.getActiveSpan();

/** A log line's fields: the operation id, customer key, job name... of what it is about. */
export type LogFields = Record<string, string | number | boolean | undefined>;

/**
 * A log line: the message, then its fields and the trace id (when a span is active) as one JSON object, so a
 * line can be found by operation id or trace in any log store. The message is also an event on the active
 * span, with the fields as its attributes: Application Insights shows it as a trace of that operation.
 */
export function logLine(message: string, fields?: LogFields): string {
  const span = trace.getActiveSpan();
  const present: Attributes = {};
  for (const [key, value] of Object.entries(fields ?? {})) if (value !== undefined) present[key] = value;
  if (span?.isRecording()) {
    span.addEvent(message, present);
    present.traceId = span.spanContext().traceId;
  }
  return Object.keys(present).length === 0 ? message : `${message} ${JSON.stringify(present)}`;
}

/**
 * The active trace context as a message's application properties: W3C `traceparent` (and `tracestate` if
 * any), and the same value as `Diagnostic-Id`, the property the Azure SDKs' Service Bus instrumentation and the
 * Functions extension read (they leave a message that has one as it is). Undefined without a span to continue,
 * which is always the case with tracing off.
 */
export function traceProperties(from?: Context): Record<string, string> | undefined {
  if (!tracing()) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(from ?? context.active(), carrier);
  if (!carrier.traceparent) return undefined;
  carrier['Diagnostic-Id'] = carrier.traceparent;
  return carrier;
}

/**
 * The trace context a message carries (`traceparent`, or else `Diagnostic-Id`), to continue it; undefined if it
 * carries none or an invalid one. Keys are matched without regard to case: the Functions library lower-cases
 * the first letter of every trigger metadata key (`diagnostic-Id`).
 */
export function remoteContext(properties: unknown): Context | undefined {
  if (typeof properties !== 'object' || properties === null || !tracing()) return undefined;
  let traceparent: unknown;
  let diagnosticId: unknown;
  let tracestate: unknown;
  for (const [key, value] of Object.entries(properties)) {
    const name = key.toLowerCase();
    if (name === 'traceparent') traceparent = value;
    else if (name === 'diagnostic-id') diagnosticId = value;
    else if (name === 'tracestate') tracestate = value;
  }
  const parent = typeof traceparent === 'string' ? traceparent : diagnosticId;
  if (typeof parent !== 'string') return undefined;
  const carrier: Record<string, string> = { traceparent: parent };
  if (typeof tracestate === 'string') carrier.tracestate = tracestate;
  const extracted = propagation.extract(ROOT_CONTEXT, carrier);
  return trace.getSpanContext(extracted) ? extracted : undefined;
}

/**
 * The trace context of an incoming request's `traceparent` header, or of the Functions invocation (its
 * `traceContext`, which the host sets from the same header or starts), so a request's spans join its caller's trace.
 */
export function requestContext(
  headers: { get(name: string): string | null },
  invocation?: { traceContext?: { traceParent?: string | null; traceState?: string | null } },
): Context | undefined {
  if (!tracing()) return undefined;
  const fromInvocation = invocation?.traceContext?.traceParent;
  return remoteContext(
    fromInvocation
      ? { traceparent: fromInvocation, tracestate: invocation.traceContext?.traceState ?? undefined }
      : { traceparent: headers.get('traceparent') ?? undefined, tracestate: headers.get('tracestate') ?? undefined },
  );
}
