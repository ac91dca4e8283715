import { z } from 'zod';

import { customerPatchSchema, customerSchema } from '../domain/customer';
import { OPERATION_STATUSES, OPERATION_TYPES } from '../domain/operation';
import {
  bulkResyncSchema,
  deadLettersQuerySchema,
  feedQuerySchema,
  listQuerySchema,
  operationEditSchema,
} from './schemas';

/**
 * The OpenAPI 3.1 description, built from the zod schemas that validate the requests (so the two cannot
 * drift) plus descriptions of the responses.
 */
const jsonSchema = (schema: z.ZodType) => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return rest;
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const jsonContent = (schema: unknown) => ({ 'application/json': { schema } });

const attributeChange = z.object({ name: z.string(), oldValue: z.unknown(), newValue: z.unknown() });
const lastError = z.object({ code: z.string(), message: z.string(), at: z.string() });
const summary = z.object({
  operationId: z.string(),
  channel: z.string(),
  type: z.enum(OPERATION_TYPES),
  customerAccount: z.string().optional(),
  asyncCustomerAccount: z.string().optional(),
  operationTimestamp: z.string(),
  status: z.enum(OPERATION_STATUSES),
  changeDescription: z.string(),
  lastError: lastError.optional(),
});
const detail = summary.extend({
  attributes: z.array(attributeChange),
  submitted: z.record(z.string(), z.unknown()).optional(),
  attempts: z.number(),
  waitingOn: z.string().optional(),
  nextAttemptAt: z.string().optional(),
  appliedAt: z.string().optional(),
  history: z.array(
    z.object({
      at: z.string(),
      status: z.enum(OPERATION_STATUSES),
      detail: z.string(),
      by: z.string().optional(),
      edits: z.array(attributeChange).optional(),
    }),
  ),
});
const problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number(),
  detail: z.string(),
  code: z.string(),
  errors: z.record(z.string(), z.array(z.string())).optional(),
});

const RESPONSES = {
  Customer: customerSchema,
  CustomerPatch: customerPatchSchema,
  OperationEdit: operationEditSchema,
  BulkResync: bulkResyncSchema,
  OperationSummary: summary,
  Operation: detail,
  Problem: problem,
  Accepted: z.object({
    operationId: z.string(),
    asyncCustomerAccount: z.string().optional(),
    status: z.literal('Pending'),
  }),
  OperationPage: z.object({ items: z.array(summary), continuationToken: z.string().optional() }),
  CustomerUpdates: z.object({
    items: z.array(
      z.object({
        customerAccount: z.string(),
        asyncCustomerAccount: z.string().optional(),
        customer: customerSchema,
        changedAt: z.string(),
      }),
    ),
    cursor: z.string(),
  }),
  HqCustomer: z.object({
    customerAccount: z.string(),
    asyncCustomerAccount: z.string().optional(),
    customer: customerSchema,
    version: z.number(),
  }),
  BulkResult: z.object({
    accepted: z.number(),
    skipped: z.array(z.object({ operationId: z.string(), reason: z.string() })),
  }),
  Failures: z.object({
    items: z.array(z.object({ code: z.string(), count: z.number(), channels: z.array(z.string()), example: summary })),
  }),
  JobRun: z.object({
    job: z.string(),
    startedAt: z.string(),
    finishedAt: z.string(),
    durationMs: z.number(),
    counts: z.record(z.string(), z.number()),
    message: z.string(),
  }),
  DeadLetter: z.object({
    messageId: z.string(),
    reason: z.string(),
    body: z.string().describe('The message body as received (cut at 16,000 characters; bytes as base64:…)'),
    receivedAt: z.string(),
  }),
} satisfies Record<string, z.ZodType>;

const errors = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((c) => [
      String(c),
      { description: 'Problem details', content: { 'application/problem+json': { schema: ref('Problem') } } },
    ]),
  );

const queryParameters = (schema: z.ZodObject) =>
  Object.entries((jsonSchema(schema).properties ?? {}) as Record<string, unknown>).map(([name, s]) => ({
    name,
    in: 'query',
    required: false,
    schema: s,
  }));

const path = (name: string, description: string) => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: { type: 'string' },
});
const channelId = path('channelId', 'The channel, e.g. web or pos-042; must match the token’s channel.');
const account = path('account', 'Either the async customer account or the customer account.');
const operationId = path('operationId', 'The operation id.');
const idempotencyKey = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: 'A repeat with the same key and body gets the first answer and creates nothing new.',
  schema: { type: 'string', maxLength: 200 },
};

let cached: object | undefined;

export function openApiDocument(): object {
  cached ??= {
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
      schemas: Object.fromEntries(Object.entries(RESPONSES).map(([name, schema]) => [name, jsonSchema(schema)])),
    },
    paths: {
      '/channels/{channelId}/customers': {
        post: {
          summary: 'Create a customer asynchronously (role Channel)',
          parameters: [channelId, idempotencyKey],
          requestBody: { required: true, content: jsonContent(ref('Customer')) },
          responses: {
            '202': { description: 'Accepted', content: jsonContent(ref('Accepted')) },
            ...errors(400, 401, 403, 413, 415, 422),
          },
        },
      },
      '/channels/{channelId}/customers/{account}': {
        patch: {
          summary: 'Edit a customer (changed fields only; null removes) (role Channel)',
          parameters: [channelId, account, idempotencyKey],
          requestBody: { required: true, content: jsonContent(ref('CustomerPatch')) },
          responses: {
            '202': { description: 'Accepted', content: jsonContent(ref('Accepted')) },
            ...errors(400, 401, 403, 404, 413, 415, 422),
          },
        },
      },
      '/channels/{channelId}/customer-updates': {
        get: {
          summary: 'The channel’s feed of HQ customer changes, oldest first (role Channel)',
          parameters: [channelId, ...queryParameters(feedQuerySchema)],
          responses: {
            '200': { description: 'A page of changes', content: jsonContent(ref('CustomerUpdates')) },
            ...errors(400, 401, 403),
          },
        },
      },
      '/operations': {
        get: {
          summary:
            'Find operations, newest first; Accept: text/csv exports every match (Sync.Reader; a channel sees its own)',
          parameters: queryParameters(listQuerySchema),
          responses: {
            '200': {
              description: 'A page of operations, or CSV',
              content: { ...jsonContent(ref('OperationPage')), 'text/csv': { schema: { type: 'string' } } },
            },
            ...errors(400, 401, 403),
          },
        },
      },
      '/operations/{operationId}': {
        get: {
          summary: 'One operation with its attribute grid, last known error and history (ETag)',
          parameters: [operationId],
          responses: {
            '200': { description: 'The operation', content: jsonContent(ref('Operation')) },
            ...errors(401, 403, 404),
          },
        },
        patch: {
          summary: 'Edit the new values of a Failed operation (Sync.Operator; If-Match required)',
          parameters: [operationId, { name: 'If-Match', in: 'header', required: true, schema: { type: 'string' } }],
          requestBody: { required: true, content: jsonContent(ref('OperationEdit')) },
          responses: {
            '200': { description: 'The edited operation', content: jsonContent(ref('Operation')) },
            ...errors(400, 401, 403, 404, 409, 412, 428),
          },
        },
      },
      '/operations/{operationId}/sync': {
        post: {
          summary: 'Resync a Failed operation (Sync.Operator)',
          parameters: [operationId],
          responses: {
            '202': { description: 'Pending again', content: jsonContent(ref('Accepted')) },
            ...errors(401, 403, 404, 409),
          },
        },
      },
      '/operations/sync': {
        post: {
          summary: 'Resync many operations, by ids or by filter (Sync.Operator)',
          requestBody: { required: true, content: jsonContent(ref('BulkResync')) },
          responses: {
            '202': { description: 'What was accepted and skipped', content: jsonContent(ref('BulkResult')) },
            ...errors(400, 401, 403),
          },
        },
      },
      '/failures': {
        get: {
          summary: 'Failed operations grouped by error code (Sync.Reader)',
          responses: { '200': { description: 'Groups', content: jsonContent(ref('Failures')) }, ...errors(401, 403) },
        },
      },
      '/customers/{account}': {
        get: {
          summary: 'The HQ customer by either account (Sync.Reader)',
          parameters: [account],
          responses: {
            '200': { description: 'The customer', content: jsonContent(ref('HqCustomer')) },
            ...errors(401, 403, 404),
          },
        },
      },
      '/jobs': {
        get: {
          summary: 'Runs of the scheduled jobs, newest first (Sync.Reader)',
          responses: {
            '200': {
              description: 'Runs',
              content: jsonContent({ type: 'object', properties: { items: { type: 'array', items: ref('JobRun') } } }),
            },
            ...errors(401, 403),
          },
        },
      },
      '/jobs/{job}/run': {
        post: {
          summary: 'Run a job now (Sync.Operator)',
          parameters: [path('job', 'sync-pending-operations or audit-retention')],
          responses: {
            '200': { description: 'The run', content: jsonContent(ref('JobRun')) },
            ...errors(401, 403, 404),
          },
        },
      },
      '/dead-letters': {
        get: {
          summary:
            'Queue messages refused as not a doorbell, newest first, with the reason; completed at once, never retried (Sync.Reader)',
          parameters: queryParameters(deadLettersQuerySchema),
          responses: {
            '200': {
              description: 'Dead letters',
              content: jsonContent({
                type: 'object',
                properties: { items: { type: 'array', items: ref('DeadLetter') } },
              }),
            },
            ...errors(400, 401, 403),
          },
        },
      },
      '/health': {
        get: {
          summary: 'Health of storage and the broker (no token)',
          security: [],
          responses: { '200': { description: 'Healthy' }, ...errors(503) },
        },
      },
      '/openapi.json': {
        get: {
          summary: 'This document (no token)',
          security: [],
          responses: { '200': { description: 'OpenAPI 3.1' } },
        },
      },
    },
  };
  return cached;
}
