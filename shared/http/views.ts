import { z } from 'zod';

import { ALERT_METRICS, DELIVERY_STATUSES } from '../domain/alerts';
import { SYNC_ACTIONS, SYNC_ERROR_KINDS } from '../domain/coupling';
import { CRM_TABLES } from '../domain/crm-mapping';
import { customerSchema } from '../domain/customer';
import { type Operation, OPERATION_STATUSES, operationSummarySchema, summaryOf } from '../domain/operation';

/**
 * The API's response shapes, as zod schemas for the OpenAPI document (GET /api/openapi.json), and the mappings
 * that produce them where a stored value differs from what the API shows.
 */
const attributeChange = z.object({ name: z.string(), oldValue: z.unknown(), newValue: z.unknown() });

export const operationDetailSchema = operationSummarySchema.extend({
  attributes: z.array(attributeChange).describe('The attribute grid: every touched attribute, old and new value'),
  submitted: z.record(z.string(), z.unknown()).optional().describe('What the channel submitted, once edited'),
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

/** An operation as `GET /api/operations/{id}` shows it: its summary, attribute grid, history and retries. */
export function detailOf(op: Operation): z.infer<typeof operationDetailSchema> {
  return {
    ...summaryOf(op),
    attributes: op.grid,
    ...(op.submitted ? { submitted: op.submitted } : {}),
    attempts: op.attempts,
    ...(op.waitingOn ? { waitingOn: op.waitingOn } : {}),
    ...(op.nextAttemptAt ? { nextAttemptAt: op.nextAttemptAt } : {}),
    ...(op.appliedAt ? { appliedAt: op.appliedAt } : {}),
    history: op.history,
  };
}

export const acceptedSchema = z.object({
  operationId: z.string(),
  asyncCustomerAccount: z.string().optional(),
  status: z.literal('Pending'),
});

export const operationPageSchema = z.object({
  items: z.array(operationSummarySchema),
  continuationToken: z.string().optional(),
});

export const customerUpdatesSchema = z.object({
  items: z.array(
    z.object({
      customerAccount: z.string(),
      asyncCustomerAccount: z.string().optional(),
      customer: customerSchema,
      deleted: z
        .literal(true)
        .optional()
        .describe('The customer was deleted in HQ; `customer` holds its last known values'),
      changedAt: z.string(),
    }),
  ),
  cursor: z.string(),
});

export const hqCustomerSchema = z.object({
  customerAccount: z.string(),
  asyncCustomerAccount: z.string().optional(),
  customer: customerSchema,
  version: z.number(),
});

export const bulkResultSchema = z.object({
  accepted: z.number(),
  skipped: z.array(z.object({ operationId: z.string(), reason: z.string() })),
});

export const failuresSchema = z.object({
  items: z.array(
    z.object({
      code: z.string(),
      count: z.number(),
      channels: z.array(z.string()),
      example: operationSummarySchema,
    }),
  ),
});

export const jobRunSchema = z.object({
  job: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  durationMs: z.number(),
  counts: z.record(z.string(), z.number()),
  directions: z
    .record(z.string(), z.record(z.string(), z.number()))
    .optional()
    .describe('crm-sync: the counts per direction (ToCrm, FromCrm)'),
  message: z.string(),
});

export const jobRunsSchema = z.object({ items: z.array(jobRunSchema) });

export const deadLetterSchema = z.object({
  messageId: z.string(),
  reason: z.string(),
  body: z.string().describe('The message body as received (cut at 16,000 characters; bytes as base64:…)'),
  receivedAt: z.string(),
});

export const deadLettersSchema = z.object({ items: z.array(deadLetterSchema) });

export const healthSchema = z.object({
  status: z.enum(['ok', 'unavailable']),
  storage: z.enum(['ok', 'unavailable']),
  broker: z.enum(['ok', 'unavailable']),
});

export const problemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number(),
  detail: z.string(),
  code: z.string(),
  errors: z.record(z.string(), z.array(z.string())).optional(),
});

export const couplingSchema = z.object({
  customerAccount: z.string(),
  asyncCustomerAccount: z.string().optional(),
  crmTable: z.enum(CRM_TABLES),
  crmId: z.string(),
  coupledAt: z.string(),
  lastSyncedAt: z.string().optional(),
  lastSyncResult: z.enum(['Success', 'Failure']).optional(),
  skipped: z.boolean(),
  lastSync: z
    .record(
      z.enum(['ToCrm', 'FromCrm']),
      z.object({ at: z.string(), result: z.string(), job: z.string().optional(), run: z.string().optional() }),
    )
    .optional()
    .describe('The last synchronization each way, from the synchronization log'),
});

export const matchAcceptedSchema = z.object({ job: z.literal('crm-match') });

export const syncLogSchema = z.object({
  items: z.array(
    z.object({
      at: z.string(),
      job: z.string().optional(),
      run: z.string().optional().describe("The run's start time"),
      by: z.string().optional(),
      direction: z.enum(['ToCrm', 'FromCrm']),
      result: z.enum(['Inserted', 'Modified', 'Deleted', 'Unchanged', 'Coupled', 'Uncoupled', 'Conflict', 'Failed']),
      detail: z.string(),
      fields: z.array(attributeChange).optional(),
    }),
  ),
  continuationToken: z.string().optional(),
});

export const syncErrorsSchema = z.object({
  items: z.array(
    z.object({
      customerAccount: z.string(),
      crmTable: z.enum(CRM_TABLES),
      crmId: z.string(),
      kind: z.enum(SYNC_ERROR_KINDS),
      message: z.string(),
      failedOn: z.string(),
      skipped: z.boolean(),
      hqExists: z.boolean(),
      crmExists: z.boolean(),
      differences: z
        .array(z.object({ field: z.string(), crmField: z.string(), hqValue: z.unknown(), crmValue: z.unknown() }))
        .optional(),
      actions: z.array(z.enum(SYNC_ACTIONS)),
    }),
  ),
  continuationToken: z.string().optional(),
});

export const actionAnswerSchema = z.object({
  operationId: z.string().optional().describe('The HQ operation the action submitted, when there is one'),
});

export const retryAllAnswerSchema = z.object({ accepted: z.number().int() });
export const alertRuleSchema = z.object({
  name: z.string(),
  metric: z.enum(ALERT_METRICS),
  threshold: z.number(),
  windowMinutes: z.number(),
  webhookUrl: z.string().optional(),
  updatedAt: z.string(),
  firing: z.boolean().describe('The rule has an open alert'),
  firedAt: z.string().optional().describe('When its open alert fired'),
});

export const alertRulesSchema = z.object({ items: z.array(alertRuleSchema) });

const deliverySchema = z
  .object({
    status: z.enum(DELIVERY_STATUSES),
    attempts: z.number(),
    lastError: z.string().optional(),
    nextAttemptAt: z.string().optional(),
    deliveredAt: z.string().optional(),
  })
  .describe('The webhook delivery: Pending (retried with backoff), Delivered or Failed');

export const alertsSchema = z.object({
  items: z.array(
    z.object({
      id: z.string().describe('<rule>@<firedAt>; the webhook payloads carry it too'),
      rule: z.string(),
      metric: z.enum(ALERT_METRICS),
      value: z.number().describe('The metric when it fired'),
      threshold: z.number(),
      windowMinutes: z.number(),
      firedAt: z.string(),
      resolvedAt: z.string().optional(),
      resolvedValue: z.number().optional(),
      resolvedReason: z.enum(['BelowThreshold', 'RuleDeleted']).optional(),
      delivery: deliverySchema.optional(),
      resolutionDelivery: deliverySchema.optional(),
    }),
  ),
  continuationToken: z.string().optional(),
});
