import { z } from 'zod';

import { customerPatchSchema, customerSchema } from '../domain/customer';
import { operationSummarySchema } from '../domain/operation';
import { type Endpoint, endpoints, requiresIfMatch } from './endpoint';
import { bulkResyncSchema, operationEditSchema } from './schemas';
import {
  acceptedSchema,
  bulkResultSchema,
  customerUpdatesSchema,
  deadLetterSchema,
  failuresSchema,
  healthSchema,
  hqCustomerSchema,
  jobRunSchema,
  operationDetailSchema,
  operationPageSchema,
  problemSchema,
} from './views';

/**
 * The OpenAPI 3.1 description of every endpoint described in this process (shared/http/endpoint.ts), built
 * from the zod schemas that validate the requests and shape the responses, so the two cannot drift.
 */

/** Schemas shown once under components and referred to by name. */
const COMPONENTS = new Map<z.ZodType, string>([
  [customerSchema, 'Customer'],
  [customerPatchSchema, 'CustomerPatch'],
  [operationEditSchema, 'OperationEdit'],
  [bulkResyncSchema, 'BulkResync'],
  [operationSummarySchema, 'OperationSummary'],
  [operationDetailSchema, 'Operation'],
  [operationPageSchema, 'OperationPage'],
  [acceptedSchema, 'Accepted'],
  [customerUpdatesSchema, 'CustomerUpdates'],
  [hqCustomerSchema, 'HqCustomer'],
  [bulkResultSchema, 'BulkResult'],
  [failuresSchema, 'Failures'],
  [jobRunSchema, 'JobRun'],
  [deadLetterSchema, 'DeadLetter'],
  [healthSchema, 'Health'],
  [problemSchema, 'Problem'],
]);

const jsonSchema = (schema: z.ZodType): Record<string, unknown> => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return rest;
};

const schemaOf = (schema: z.ZodType) => {
  const name = COMPONENTS.get(schema);
  return name ? { $ref: `#/components/schemas/${name}` } : jsonSchema(schema);
};

/** An object schema's properties as parameters: its own description moves up to the parameter. */
function parameters(where: 'path' | 'header' | 'query', schema: z.ZodObject | undefined) {
  if (!schema) return [];
  const { properties = {}, required = [] } = jsonSchema(schema) as {
    properties?: Record<string, { description?: string }>;
    required?: string[];
  };
  return Object.entries(properties).map(([name, { description, ...property }]) => ({
    name: where === 'header' ? headerName(name) : name,
    in: where,
    required: where === 'path' || required.includes(name),
    ...(description ? { description } : {}),
    schema: property,
  }));
}

const headerName = (name: string) => name.replace(/(^|-)[a-z]/g, (c) => c.toUpperCase());

/**
 * Whether path parameters can be refused (400): a path segment that no identifier has, such as a space, is.
 * Parameters taken as plain text are looked up by the use case instead (404 when not found).
 */
const refusesParams = (params: z.ZodObject) =>
  !params.safeParse(Object.fromEntries(Object.keys(params.shape).map((name) => [name, ' ']))).success;

/** The problem statuses an endpoint answers: those of the checks every endpoint makes, and its own. */
function problemStatuses(e: Endpoint): number[] {
  const { params, headers, query, body } = e.request;
  const statuses = new Set(e.problems ?? []);
  if ((params && refusesParams(params)) || headers || query || body) statuses.add(400);
  if (e.access !== 'anonymous') [401, 403].forEach((s) => statuses.add(s));
  if (body) [413, 415].forEach((s) => statuses.add(s));
  if (headers && requiresIfMatch(headers)) statuses.add(428);
  return [...statuses].sort();
}

function operation(e: Endpoint) {
  const responses: Record<string, unknown> = {};
  for (const [status, response] of Object.entries(e.responses)) {
    const content = {
      ...(response.schema ? { 'application/json': { schema: schemaOf(response.schema) } } : {}),
      ...(response.csv ? { 'text/csv': { schema: { type: 'string' } } } : {}),
    };
    responses[status] = { description: response.description, ...(Object.keys(content).length ? { content } : {}) };
  }
  for (const status of problemStatuses(e)) {
    responses[status] = {
      description: 'Problem details',
      content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
    };
  }
  const { params, headers, query, body } = e.request;
  const parameterList = [
    ...parameters('path', params),
    ...parameters('header', headers),
    ...parameters('query', query),
  ];
  return {
    operationId: e.name,
    summary: e.summary,
    // Bearer scopes name roles, as OpenAPI 3.1 allows for schemes other than OAuth 2.
    security: e.access === 'anonymous' ? [] : [{ bearer: [...e.access] }],
    ...(parameterList.length ? { parameters: parameterList } : {}),
    ...(body ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(body) } } } } : {}),
    responses,
  };
}

let cached: { document: object; count: number } | undefined;

export function openApiDocument(): object {
  // Function files describe their endpoints as they load; by the first request every one has.
  if (cached?.count === endpoints.length) return cached.document;
  const paths: Record<string, Record<string, unknown>> = {};
  for (const e of endpoints) (paths[`/${e.route}`] ??= {})[e.method.toLowerCase()] = operation(e);
  const document = {
    openapi: '3.1.0',
    info: {
      title: 'Customer Sync',
      version: '1.0.0',
      description: 'Asynchronous customer synchronization with a full audit trail and self-service repair.',
    },
    servers: [{ url: '/api' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: Object.fromEntries([...COMPONENTS].map(([schema, name]) => [name, jsonSchema(schema)])),
    },
    paths,
  };
  cached = { document, count: endpoints.length };
  return document;
}
