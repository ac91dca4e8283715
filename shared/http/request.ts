import { createHash } from 'node:crypto';

import type { z } from 'zod';

import { DomainError, fieldErrors } from '../domain/errors';

/** The part of an HTTP request the adapters need; @azure/functions' HttpRequest satisfies it. */
export interface HttpRequestLike {
  method: string;
  url: string;
  headers: { get(name: string): string | null };
  params: Record<string, string>;
  query: URLSearchParams;
  arrayBuffer(): Promise<ArrayBuffer>;
}

export const MAX_BODY_BYTES = 256 * 1024;

/** A UTF-16 surrogate without its other half: text that cannot be stored or sent on as UTF-8. */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads and validates a JSON body. Everything a client can get wrong — content type, size, encoding, syntax,
 * unknown or invalid fields — becomes one 4xx that names the problem, before anything is written. Text must
 * be valid Unicode: bytes that are not UTF-8, or a `\uD800` escape without its pair, would otherwise be
 * stored as replacement characters, silently changing what the channel sent.
 */
export async function readJson<S extends z.ZodType>(request: HttpRequestLike, schema: S): Promise<z.infer<S>> {
  const contentType = request.headers.get('content-type') ?? '';
  if (!/^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType)) {
    throw new DomainError(
      'UNSUPPORTED_MEDIA_TYPE',
      `Send the body as application/json (got '${contentType || 'none'}').`,
    );
  }
  const declared = Number(request.headers.get('content-length') ?? 0);
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const bytes = await request.arrayBuffer();
  if (bytes.byteLength > MAX_BODY_BYTES) throw tooLarge();
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw invalidBody('The body is not valid UTF-8.', 'is not valid UTF-8');
  }
  let json: unknown;
  let malformed: string | undefined;
  try {
    json = JSON.parse(text, (key, value: unknown) => {
      if (LONE_SURROGATE.test(key) || (typeof value === 'string' && LONE_SURROGATE.test(value))) malformed ??= key;
      return value;
    });
  } catch (error) {
    throw invalidBody(`The body is not valid JSON: ${(error as Error).message}`, 'is not valid JSON');
  }
  if (malformed !== undefined) {
    throw invalidBody(
      'The body holds text that is not valid Unicode (a lone UTF-16 surrogate).',
      'is not valid Unicode',
    );
  }
  return validate(schema, json, 'The body is not valid.');
}

export function validate<S extends z.ZodType>(schema: S, value: unknown, detail: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new DomainError('VALIDATION_FAILED', `${detail} ${summarize(result.error)}`, fieldErrors(result.error));
}

/** The headers a schema names (lower case), validated like a body; an absent header is undefined. */
export function readHeaders<S extends z.ZodObject>(request: HttpRequestLike, schema: S): z.infer<S> {
  const raw = Object.create(null) as Record<string, string | undefined>;
  for (const name of Object.keys(schema.shape)) raw[name] = request.headers.get(name) ?? undefined;
  return validate(schema, raw, 'Invalid headers.');
}

/** Query parameters as an object (repeated keys become arrays), validated like a body. */
export function readQuery<S extends z.ZodType>(request: HttpRequestLike, schema: S): z.infer<S> {
  // Keys are the client's: `__proto__` must become a key the schema refuses, not this object's prototype.
  const raw = Object.create(null) as Record<string, string | string[]>;
  for (const key of new Set(request.query.keys())) {
    const values = request.query.getAll(key);
    raw[key] = values.length === 1 ? values[0]! : values;
  }
  return validate(schema, raw, 'Invalid query parameters.');
}

function summarize(error: z.ZodError): string {
  const fields = Object.keys(fieldErrors(error)).map((f) => f || '(body)');
  return `Check: ${fields.join(', ')}.`;
}

const invalidBody = (detail: string, message: string) =>
  new DomainError('VALIDATION_FAILED', detail, { '': [message] });

const tooLarge = () =>
  new DomainError('PAYLOAD_TOO_LARGE', `The body is larger than ${MAX_BODY_BYTES / 1024} KiB.`, {
    '': [`must be at most ${MAX_BODY_BYTES} bytes`],
  });

/**
 * A request's Idempotency-Key (validated with its header) with a hash of the body it came with, so a repeat
 * with another body is told apart from a retry; undefined without the header.
 */
export function idempotencyOf(
  key: string | undefined,
  body: unknown,
): { key: string; requestHash: string } | undefined {
  if (key === undefined) return undefined;
  return { key, requestHash: createHash('sha256').update(JSON.stringify(body)).digest('base64url') };
}
