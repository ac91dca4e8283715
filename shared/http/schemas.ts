import { z } from 'zod';

/** Request schemas of the HTTP API beyond the customer itself (shared/domain/customer.ts). */
export const channelIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be 1–64 letters, digits, _ or -, such as web or pos-042');

export const accountSchema = z.string().regex(/^[A-Z0-9][A-Z0-9-]{0,63}$/, 'is not an account number');

export const idempotencyKeySchema = z.string().regex(/^[\x21-\x7e]{1,200}$/, 'must be 1–200 visible ASCII characters');

export const feedQuerySchema = z.strictObject({ cursor: z.string().min(1).max(2048).optional() });

export const jobNameSchema = z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, 'is not a job name');
