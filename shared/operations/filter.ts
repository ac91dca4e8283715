import { createHash } from 'node:crypto';

import { z } from 'zod';

import { accountSchema } from '../domain/accounts';
import { attributeName } from '../domain/customer';
import { DomainError } from '../domain/errors';
import {
  channelIdSchema,
  type Operation,
  OPERATION_STATUSES,
  OPERATION_TYPES,
  type OperationHead,
} from '../domain/operation';

/** Customer fields an operator can filter on or repair, as attribute paths. */
const TOP_LEVEL = [
  'customerType',
  'firstName',
  'lastName',
  'organizationName',
  'email',
  'phone',
  'customerGroup',
  'currency',
  'language',
] as const;
const ADDRESS = ['street', 'city', 'postalCode', 'countryRegion', 'state'] as const;

export function isAttributePath(path: string): boolean {
  if ((TOP_LEVEL as readonly string[]).includes(path)) return true;
  const [head, inner] = [path.slice(0, path.indexOf('.')), path.slice(path.indexOf('.') + 1)];
  if (head === 'address') return (ADDRESS as readonly string[]).includes(inner);
  return head === 'attributes' && attributeName.safeParse(inner).success;
}

export const attributePath = z
  .string()
  .max(80)
  .refine(isAttributePath, 'must be a customer field such as email, address.city or attributes.<name>');

/** A timestamp inside the range the index keys can represent (inverted milliseconds, 13 digits). */
const instant = z.iso
  .datetime({ offset: true })
  .refine((t) => t >= '2000' && t < '2100', 'must be between the years 2000 and 2099');
const oneOrMany = <T extends z.ZodType>(schema: T) => z.union([schema, z.array(schema).max(10)]).optional();
const asArray = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The filter keys of `GET /api/operations`, shared by the bulk resync's `filter` body. */
export const filterShape = {
  channel: channelIdSchema.optional(),
  status: z.enum(OPERATION_STATUSES).optional(),
  type: z.enum(OPERATION_TYPES).optional(),
  customerAccount: accountSchema.optional(),
  asyncCustomerAccount: accountSchema.optional(),
  from: instant.optional(),
  to: instant.optional(),
  code: z
    .string()
    .regex(/^[A-Z][A-Z_]{0,63}$/, 'is not an error code')
    .optional(),
  field: oneOrMany(attributePath),
  value: oneOrMany(z.string().max(1024)),
};

export interface OperationFilter {
  channel?: string;
  status?: Operation['status'];
  type?: Operation['type'];
  customerAccount?: string;
  asyncCustomerAccount?: string;
  from?: string;
  to?: string;
  /** The last error's code (e.g. to resync one group of failures). */
  code?: string;
  fields: { field: string; value: string }[];
}

type RawFilter = { [K in keyof typeof filterShape]?: z.infer<(typeof filterShape)[K]> };

/** Pairs field/value parameters and normalises times; a mismatch is a 400 naming the parameter. */
export function toFilter(raw: RawFilter): OperationFilter {
  const fields = asArray(raw.field);
  const values = asArray(raw.value);
  if (fields.length !== values.length) {
    throw new DomainError('VALIDATION_FAILED', 'Give one value for each field (field=..&value=.. pairs).', {
      [fields.length > values.length ? 'value' : 'field']: ['must come in field/value pairs'],
    });
  }
  const from = raw.from && new Date(raw.from).toISOString();
  const to = raw.to && new Date(raw.to).toISOString();
  if (from && to && from > to) {
    throw new DomainError('VALIDATION_FAILED', '`from` is after `to`.', { from: ['must not be after to'] });
  }
  return {
    ...(raw.channel ? { channel: raw.channel } : {}),
    ...(raw.status ? { status: raw.status } : {}),
    ...(raw.type ? { type: raw.type } : {}),
    ...(raw.customerAccount ? { customerAccount: raw.customerAccount } : {}),
    ...(raw.asyncCustomerAccount ? { asyncCustomerAccount: raw.asyncCustomerAccount } : {}),
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
    ...(raw.code ? { code: raw.code } : {}),
    fields: fields.map((field, i) => ({ field, value: values[i]! })),
  };
}

/** Whether an operation (read from the Customers table) satisfies the whole filter. */
export function matches(op: OperationHead, filter: OperationFilter, customerKey?: string): boolean {
  if (filter.channel && op.channel !== filter.channel) return false;
  if (filter.status && op.status !== filter.status) return false;
  if (filter.type && op.type !== filter.type) return false;
  if (customerKey && op.customerKey !== customerKey) return false;
  if (filter.from && op.operationTimestamp < filter.from) return false;
  if (filter.to && op.operationTimestamp > filter.to) return false;
  if (filter.code && op.lastError?.code !== filter.code) return false;
  return filter.fields.every(({ field, value }) => {
    const current = op.changes[field];
    return current !== undefined && current !== null && String(current) === value;
  });
}

/** Ties a continuation token to the filter it was issued for. */
export const filterFingerprint = (filter: OperationFilter) =>
  createHash('sha256').update(JSON.stringify(filter)).digest('base64url').slice(0, 12);
