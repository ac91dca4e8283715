import type { z } from 'zod';

import { DomainError, type FieldErrors } from '../domain/errors';

/** The part of an HTTP request the adapters need; @azure/functions' HttpRequest satisfies it. */
export interface HttpRequestLike {
  method: string;
  url: string;
  headers: { get(name: string): string | null };
  params: Record<string, string>;
  query: URLSearchParams;
  text(): Promise<string>;
}

export const MAX_BODY_BYTES = 256 * 1024;

/**
 * Reads and validates a JSON body. Everything a client can get wrong — content type, size, syntax, unknown
 * or invalid fields — becomes one 4xx that names the problem, before anything is written.
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
  const text = await request.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) throw tooLarge();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new DomainError('VALIDATION_FAILED', `The body is not valid JSON: ${(error as Error).message}`, {
      '': ['is not valid JSON'],
    });
  }
  return validate(schema, json, 'The body is not valid.');
}

export function validate<S extends z.ZodType>(schema: S, value: unknown, detail: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new DomainError('VALIDATION_FAILED', `${detail} ${summarize(result.error)}`, fieldErrors(result.error));
}

/** Query parameters as an object (repeated keys become arrays), validated like a body. */
export function readQuery<S extends z.ZodType>(request: HttpRequestLike, schema: S): z.infer<S> {
  const raw: Record<string, string | string[]> = {};
  for (const key of new Set(request.query.keys())) {
    const values = request.query.getAll(key);
    raw[key] = values.length === 1 ? values[0]! : values;
  }
  return validate(schema, raw, 'Invalid query parameters.');
}

export function fieldErrors(error: z.ZodError): FieldErrors {
  const errors: FieldErrors = {};
  const add = (path: string, message: string) => (errors[path] ??= []).push(message);
  for (const issue of error.issues) {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) add(path ? `${path}.${key}` : key, 'is not a known field');
    } else {
      add(path, issue.message);
    }
  }
  return errors;
}

function summarize(error: z.ZodError): string {
  const fields = Object.keys(fieldErrors(error)).map((f) => f || '(body)');
  return `Check: ${fields.join(', ')}.`;
}

const tooLarge = () =>
  new DomainError('PAYLOAD_TOO_LARGE', `The body is larger than ${MAX_BODY_BYTES / 1024} KiB.`, {
    '': [`must be at most ${MAX_BODY_BYTES} bytes`],
  });
