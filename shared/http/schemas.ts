import { z } from 'zod';

import { ALERT_METRICS, alertRuleName } from '../domain/alerts';
import { SYNC_ERROR_KINDS } from '../domain/coupling';
import { CRM_TABLES, MATCH_FIELDS } from '../domain/crm-mapping';
import { attributeValue, MAX_ATTRIBUTES } from '../domain/customer';
import { channelIdSchema } from '../domain/operation';
import { attributePath, filterShape } from '../operations/filter';
import { BULK_LIMIT } from '../operations/repair';

/**
 * Request schemas of the HTTP API beyond the customer itself (shared/domain/customer.ts): path parameters,
 * headers, queries and bodies. Endpoint descriptors name them; the same schemas validate requests and
 * describe them in the OpenAPI document. Header names are lower case, as requests carry them.
 */
const channelId = channelIdSchema.describe('The channel, e.g. web or pos-042; must match the token’s channel.');
// Accounts and operation ids that are malformed are simply not found (404), so they are taken as text here.
const account = z.string().describe('Either the async customer account or the customer account.');

export const channelParams = z.object({ channelId });
export const channelCustomerParams = z.object({ channelId, account });
export const accountParams = z.object({ account });
export const operationParams = z.object({ operationId: z.string().describe('The operation id.') });
export const jobParams = z.object({
  job: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,63}$/, 'is not a job name')
    .describe('sync-pending-operations, audit-retention, crm-sync, crm-match or alerts'),
});

export const idempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .regex(/^[\x21-\x7e]{1,200}$/, 'must be 1–200 visible ASCII characters')
    .optional()
    .describe('A repeat with the same key and body gets the first answer and creates nothing new.'),
});

/** Required: a request without it is answered 428 (it must say which version it changes). */
export const ifMatchHeaders = z.object({
  'if-match': z.string().min(1).describe('The ETag from GET /api/operations/{operationId}.'),
});

export const feedQuerySchema = z.strictObject({ cursor: z.string().min(1).max(2048).optional() });

export const listQuerySchema = z.strictObject({
  ...filterShape,
  top: z.coerce.number().int().min(1).max(1000).default(100),
  continuationToken: z.string().min(1).max(2048).optional(),
});

const top = z.coerce.number().int().min(1).max(1000).default(100);
const continuationToken = z.string().min(1).max(2048).optional();

export const deadLettersQuerySchema = z.strictObject({ top });

export const syncErrorsQuerySchema = z.strictObject({
  kind: z.enum(SYNC_ERROR_KINDS).optional(),
  top,
  continuationToken,
});

export const syncLogQuerySchema = z.strictObject({ top, continuationToken });

export const synchronizeBodySchema = z.strictObject({
  use: z.enum(['hq', 'crm']).describe('hq: HQ’s values are written to the CRM row; crm: the CRM’s are submitted to HQ'),
  failedOn: z.iso
    .datetime()
    .optional()
    .describe('The `failedOn` of the error the choice was made on: a newer error is not settled with it (409)'),
});

export const retryAllBodySchema = z.strictObject({
  kind: z.enum(SYNC_ERROR_KINDS).optional().describe('Only errors of this kind; all kinds if left out'),
});
export const alertRuleParams = z.object({ name: alertRuleName.describe('The rule’s name') });

export const alertRuleBodySchema = z.strictObject({
  metric: z
    .enum(ALERT_METRICS)
    .describe(
      'failedOperations: operations that failed within the window; pendingOverdue: operations still Pending ' +
        'after windowMinutes; syncErrors: open sync errors (any age); deadLetters: dead letters within the window',
    ),
  threshold: z.number().int().min(1).max(1_000_000).describe('The rule fires when the metric reaches this value'),
  windowMinutes: z.number().int().min(1).max(10_080).describe('1 minute to 7 days'),
  webhookUrl: z
    .string()
    .max(2048)
    .optional()
    .describe('https, to a host in ALERT_WEBHOOK_HOSTS; each firing and resolution is POSTed there'),
});

export const alertsQuerySchema = z.strictObject({ top, continuationToken });

export const couplingBodySchema = z.strictObject({
  crmTable: z.enum(CRM_TABLES),
  crmId: z.uuid().describe('The Dataverse row id'),
});

export const matchBodySchema = z.strictObject({
  fields: z
    .array(z.enum(MATCH_FIELDS))
    .min(1)
    .max(MATCH_FIELDS.length)
    .refine((fields) => new Set(fields).size === fields.length, 'names a field twice')
    .describe('HQ fields to match on, in priority order'),
  createIfNoMatch: z.boolean().default(false).describe('Insert a CRM row for a customer that matches none'),
});

export const operationEditSchema = z.strictObject({
  attributes: z
    .record(attributePath, attributeValue.nullable())
    .refine((a) => Object.keys(a).length > 0, 'name at least one attribute to edit')
    .refine((a) => Object.keys(a).length <= MAX_ATTRIBUTES + 20, 'too many attributes'),
});

export const bulkResyncSchema = z.union(
  [
    z.strictObject({ operationIds: z.array(z.string().min(1).max(100)).min(1).max(BULK_LIMIT) }),
    z.strictObject({ filter: z.strictObject(filterShape) }),
  ],
  {
    error: `send either { "operationIds": [1–${BULK_LIMIT} ids] } or { "filter": { ...the GET /api/operations keys } }`,
  },
);
