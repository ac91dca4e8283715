import { z } from 'zod';

import { attributeValue, MAX_ATTRIBUTES } from '../domain/customer';
import { attributePath, filterShape } from '../operations/filter';
import { BULK_LIMIT } from '../operations/repair';

/** Request schemas of the HTTP API beyond the customer itself (shared/domain/customer.ts). */
export const channelIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be 1–64 letters, digits, _ or -, such as web or pos-042');

export const accountSchema = z.string().regex(/^[A-Z0-9][A-Z0-9-]{0,63}$/, 'is not an account number');

export const feedQuerySchema = z.strictObject({ cursor: z.string().min(1).max(2048).optional() });

export const jobNameSchema = z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'is not a job name');

export const listQuerySchema = z.strictObject({
  ...filterShape,
  top: z.coerce.number().int().min(1).max(1000).default(100),
  continuationToken: z.string().min(1).max(2048).optional(),
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

export const deadLettersQuerySchema = z.strictObject({
  top: z.coerce.number().int().min(1).max(1000).default(100),
});
