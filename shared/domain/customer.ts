import { z } from 'zod';

/**
 * The customer as channels submit it (the OpenAPI document's Customer). Structural rules live here and are
 * checked at submit time (→ 400); HQ rules need HQ state and are checked when processing (./hq-rules.ts).
 */
// Say "is required" rather than zod's "expected string, received undefined" for a missing field.
z.config({
  customError: (issue) => (issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : undefined),
});

const NAME_MAX = 256;
const LONG_MAX = 1024;
export const MAX_ATTRIBUTES = 50;

const shortText = z.string().trim().min(1).max(NAME_MAX);
const longText = z.string().trim().min(1).max(LONG_MAX);

/** Attribute names become `attributes.<name>` in the attribute grid, so no dots; and never prototype keys. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
export const attributeName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'must start with a letter and use only letters, digits, _ and - (≤ 64)')
  .refine((name) => !FORBIDDEN_KEYS.has(name), 'is a reserved name');

export const attributeValue = z.union([z.string().max(LONG_MAX), z.number().finite(), z.boolean()]);

const attributes = z
  .record(attributeName, attributeValue)
  .refine((a) => Object.keys(a).length <= MAX_ATTRIBUTES, `at most ${MAX_ATTRIBUTES} attributes`);

export const currencyCode = z.string().regex(/^[A-Za-z]{3}$/, 'must be a 3-letter currency code');
export const countryRegionCode = z.string().regex(/^[A-Za-z]{2,3}$/, 'must be a 2- or 3-letter country/region code');

export const addressSchema = z.strictObject({
  street: longText,
  city: shortText,
  postalCode: z.string().trim().min(1).max(32),
  countryRegion: countryRegionCode,
  state: shortText.optional(),
});

const customerShape = {
  customerType: z.enum(['Person', 'Organization']),
  firstName: shortText.optional(),
  lastName: shortText.optional(),
  organizationName: shortText.optional(),
  email: z.email().max(NAME_MAX),
  phone: shortText.optional(),
  customerGroup: shortText,
  currency: currencyCode,
  language: z
    .string()
    .regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/, 'must be a language tag such as da-DK')
    .optional(),
  address: addressSchema.optional(),
  attributes: attributes.optional(),
};

type NameFields = Partial<Record<'customerType' | 'firstName' | 'lastName' | 'organizationName', unknown>>;

/**
 * A name field required by the customer type. `when` runs the check even when other fields are invalid
 * (zod skips refinements of a failed object by default), so one 400 names every bad field.
 */
type Check = [
  (c: NameFields) => boolean,
  { path: PropertyKey[]; message: string; when: (p: { value: unknown }) => boolean },
];
const requiredFor = (type: 'Person' | 'Organization', field: keyof NameFields): Check => [
  (c: NameFields) => c.customerType !== type || Boolean(c[field]),
  {
    path: [field],
    message: `is required for ${type === 'Person' ? 'a Person' : 'an Organization'}`,
    when: (payload: { value: unknown }) => typeof payload.value === 'object' && payload.value !== null,
  },
];

export const customerSchema = z
  .strictObject(customerShape)
  .refine(...requiredFor('Person', 'firstName'))
  .refine(...requiredFor('Person', 'lastName'))
  .refine(...requiredFor('Organization', 'organizationName'));
export type Customer = z.infer<typeof customerSchema>;

/**
 * An edit: only the changed fields. `null` removes an optional field or an attribute; whether the merged
 * customer is still whole (e.g. a Person keeps its names) is checked when the edit is applied.
 */
const nullable = <T extends z.ZodType>(schema: T) => schema.nullable().optional();
export const customerPatchSchema = z
  .strictObject({
    customerType: customerShape.customerType.optional(),
    firstName: nullable(shortText),
    lastName: nullable(shortText),
    organizationName: nullable(shortText),
    email: customerShape.email.optional(),
    phone: nullable(shortText),
    customerGroup: shortText.optional(),
    currency: currencyCode.optional(),
    language: nullable(customerShape.language.unwrap()),
    address: z
      .strictObject({
        street: longText.optional(),
        city: shortText.optional(),
        postalCode: addressSchema.shape.postalCode.optional(),
        countryRegion: countryRegionCode.optional(),
        state: nullable(shortText),
      })
      .optional(),
    attributes: z
      .record(attributeName, attributeValue.nullable())
      .refine((a) => Object.keys(a).length <= MAX_ATTRIBUTES, `at most ${MAX_ATTRIBUTES} attributes`)
      .optional(),
  })
  .refine((patch) => Object.keys(patch).length > 0, 'an edit must change at least one field');
export type CustomerPatch = z.infer<typeof customerPatchSchema>;
