import { describe, expect, it } from 'vitest';

import { customerSchema } from '../../shared/domain/customer';
import { DomainError } from '../../shared/domain/errors';
import {
  type HttpRequestLike,
  idempotencyOf,
  MAX_BODY_BYTES,
  readHeaders,
  readJson,
  readQuery,
} from '../../shared/http/request';
import { idempotencyHeaders, listQuerySchema } from '../../shared/http/schemas';

/** A request as the Functions library hands it over: headers, query, and a body read as bytes. */
function request(options: { body?: string | Buffer; headers?: Record<string, string>; query?: string } = {}) {
  const bytes = typeof options.body === 'string' ? Buffer.from(options.body) : (options.body ?? Buffer.alloc(0));
  return {
    method: 'POST',
    url: 'http://localhost/api/x',
    headers: new Headers({ 'content-type': 'application/json', ...options.headers }),
    params: {},
    query: new URLSearchParams(options.query),
    arrayBuffer: async () => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
  } satisfies HttpRequestLike;
}

const refusal = async (promise: Promise<unknown> | (() => unknown)) => {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    if (error instanceof DomainError) return { code: error.code, detail: error.message, errors: error.errors };
    throw error;
  }
  throw new Error('not refused');
};

const customer = {
  customerType: 'Person',
  firstName: 'Ann',
  lastName: 'Berg',
  email: 'ann@example.dk',
  customerGroup: 'Retail',
  currency: 'DKK',
};

describe('reading a JSON body', () => {
  it('accepts JSON and JSON-based content types', async () => {
    for (const type of ['application/json', 'application/json; charset=utf-8', 'application/merge-patch+json']) {
      const body = await readJson(
        request({ body: JSON.stringify(customer), headers: { 'content-type': type } }),
        customerSchema,
      );
      expect(body).toEqual(customer);
    }
  });

  it('refuses another content type with 415, naming what was sent', async () => {
    const problem = await refusal(
      readJson(request({ body: '{}', headers: { 'content-type': 'text/plain' } }), customerSchema),
    );
    expect(problem).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', detail: expect.stringContaining('text/plain') });
  });

  it('refuses a body over the limit, by its declared length or by what arrives', async () => {
    const declared = request({ body: '{}', headers: { 'content-length': String(MAX_BODY_BYTES + 1) } });
    expect(await refusal(readJson(declared, customerSchema))).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    const actual = request({ body: JSON.stringify({ note: 'x'.repeat(MAX_BODY_BYTES) }) });
    expect(await refusal(readJson(actual, customerSchema))).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('refuses bytes that are not UTF-8, text that is not JSON, and lone surrogates, instead of storing them mangled', async () => {
    const notUtf8 = Buffer.concat([Buffer.from('{"firstName":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    expect(await refusal(readJson(request({ body: notUtf8 }), customerSchema))).toMatchObject({
      code: 'VALIDATION_FAILED',
      detail: 'The body is not valid UTF-8.',
    });
    expect(await refusal(readJson(request({ body: '{"a":' }), customerSchema))).toMatchObject({
      code: 'VALIDATION_FAILED',
      detail: expect.stringMatching(/^The body is not valid JSON/),
    });
    for (const body of ['{"firstName":"\\ud800"}', '{"\\udc00":1}']) {
      expect(await refusal(readJson(request({ body }), customerSchema))).toMatchObject({
        detail: expect.stringContaining('lone UTF-16 surrogate'),
      });
    }
  });

  it('names every invalid and unknown field, prototype keys included, as plain keys', async () => {
    // Written out: in an object literal, __proto__ would set the prototype instead of making a key.
    const body = `${JSON.stringify({ ...customer, email: 'nope', currency: 'DK' }).slice(0, -1)},"__proto__":{"x":1},"colour":"red"}`;
    const problem = await refusal(readJson(request({ body }), customerSchema));
    expect(problem.code).toBe('VALIDATION_FAILED');
    expect(Object.keys(problem.errors ?? {}).sort()).toEqual(['__proto__', 'colour', 'currency', 'email']);
    expect(problem.errors?.colour).toEqual(['is not a known field']);
    expect(problem.detail).toBe('The body is not valid. Check: email, currency, __proto__, colour.');
  });
});

describe('reading the query and headers', () => {
  it('turns repeated parameters into a list and coerces numbers', () => {
    const query = readQuery(request({ query: 'field=email&value=a&field=phone&value=b&top=5' }), listQuerySchema);
    expect(query).toMatchObject({ field: ['email', 'phone'], value: ['a', 'b'], top: 5 });
  });

  it('refuses an unknown parameter, even one named like a prototype key, with the parameter named', async () => {
    for (const name of ['colour', '__proto__', 'constructor']) {
      const problem = await refusal(() => readQuery(request({ query: `${name}=1` }), listQuerySchema));
      expect(problem.code).toBe('VALIDATION_FAILED');
      expect(Object.hasOwn(problem.errors ?? {}, name)).toBe(true);
    }
  });

  it('reads the headers a schema names: absent is undefined, invalid is a 400 naming the header', async () => {
    expect(readHeaders(request(), idempotencyHeaders)).toEqual({ 'idempotency-key': undefined });
    expect(readHeaders(request({ headers: { 'Idempotency-Key': 'k-1' } }), idempotencyHeaders)).toEqual({
      'idempotency-key': 'k-1',
    });
    const problem = await refusal(() =>
      readHeaders(request({ headers: { 'Idempotency-Key': 'x'.repeat(201) } }), idempotencyHeaders),
    );
    expect(problem).toMatchObject({ code: 'VALIDATION_FAILED', errors: { 'idempotency-key': [expect.any(String)] } });
  });
});

describe('idempotency keys', () => {
  it('tie a key to the body it came with, so a repeat is told apart from a reuse', () => {
    expect(idempotencyOf(undefined, customer)).toBeUndefined();
    const first = idempotencyOf('k', customer)!;
    expect(idempotencyOf('k', { ...customer })).toEqual(first);
    expect(idempotencyOf('k', { ...customer, phone: '1' })!.requestHash).not.toBe(first.requestHash);
  });
});

describe('validation messages', () => {
  it('say "is required" for a missing field rather than a type error', async () => {
    const { email: _email, ...withoutEmail } = customer;
    const problem = await refusal(readJson(request({ body: JSON.stringify(withoutEmail) }), customerSchema));
    expect(problem.errors).toEqual({ email: ['is required'] });
  });
});
