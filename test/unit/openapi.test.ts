import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { beforeAll, describe, expect, it, vi } from 'vitest';

import { openApiDocument } from '../../shared/http/openapi';

/** What the function files register with the Functions runtime, captured instead of served. */
const registered = vi.hoisted(() => ({ http: [] as { name: string; methods: string[]; route: string }[] }));
vi.mock('@azure/functions', () => ({
  app: {
    http: (name: string, options: { methods: string[]; route: string }) =>
      registered.http.push({ name, methods: options.methods, route: options.route }),
    timer: () => undefined,
    serviceBusQueue: () => undefined,
    hook: { appStart: () => undefined },
    setup: () => undefined,
  },
}));

type Operation = {
  operationId: string;
  parameters?: { name: string; in: string; required: boolean }[];
  responses: Record<string, unknown>;
  security: { bearer: string[] }[];
};
let doc: { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown> } };

beforeAll(async () => {
  const dir = join(__dirname, '..', '..', 'functions');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) await import(join(dir, file));
  doc = openApiDocument() as typeof doc;
});

const operations = () =>
  Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({ path, method: method.toUpperCase(), op })),
  );

describe('the OpenAPI document', () => {
  it('describes every route the function files register, under the function’s name, and nothing else', () => {
    expect(registered.http.length).toBeGreaterThan(10);
    // The operator console is a page, not an API endpoint (shared/http/console.ts): deliberately left out.
    expect(registered.http.filter((r) => r.route.startsWith('console/')).map((r) => r.name)).toEqual(['console-get']);
    const served = registered.http
      .filter((r) => r.name !== 'console-get')
      .flatMap((r) => r.methods.map((m) => `${m} /${r.route} ${r.name}`));
    const documented = operations().map(({ path, method, op }) => `${method} ${path} ${op.operationId}`);
    expect(new Set(documented)).toEqual(new Set(served));
  });

  it('documents each path parameter of a route, and no other', () => {
    for (const { path, op } of operations()) {
      const inRoute = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      const documented = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
      expect(documented, path).toEqual(inRoute);
    }
  });

  it('refers only to schemas it defines', () => {
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(10);
    for (const name of new Set(refs)) expect(doc.components.schemas, name).toHaveProperty(name);
  });

  it('documents a success for every operation, and a token for all but health and this document', () => {
    for (const { path, method, op } of operations()) {
      expect(
        Object.keys(op.responses).some((s) => s.startsWith('2')),
        `${method} ${path}`,
      ).toBe(true);
      const open = path === '/health' || path === '/openapi.json';
      expect(op.security.length === 0, `${method} ${path}`).toBe(open);
    }
  });

  it('documents a 400 where a path parameter can be refused, and not where it is only looked up', () => {
    expect(doc.paths['/jobs/{job}/run']!.post!.responses).toHaveProperty('400');
    expect(doc.paths['/channels/{channelId}/customer-updates']!.get!.responses).toHaveProperty('400');
    expect(doc.paths['/operations/{operationId}/sync']!.post!.responses).not.toHaveProperty('400');
    expect(doc.paths['/customers/{account}']!.get!.responses).not.toHaveProperty('400');
  });

  it('documents a required If-Match and its 428 on the conditional edit', () => {
    const edit = doc.paths['/operations/{operationId}']!.patch!;
    expect(edit.parameters).toContainEqual(expect.objectContaining({ name: 'If-Match', in: 'header', required: true }));
    expect(Object.keys(edit.responses)).toEqual(expect.arrayContaining(['200', '404', '409', '412', '428']));
  });
});
