import type { AttributeValue, Changes } from './changes';
import { valueAt } from './changes';
import type { Customer } from './customer';

/**
 * What is synchronized with the CRM, declared once per CRM table (DESIGN.md §8): each HQ field with its
 * Dataverse column and the direction it flows. `Bidirectional` fields are where both apps may edit and
 * conflicts can arise; `ToCrm` fields are HQ's alone (the CRM row shows them, e.g. the HQ customer account);
 * `FromCrm` fields are the CRM's alone. Everything the sync compares, writes and logs is derived from here.
 */
export const CRM_TABLES = ['accounts', 'contacts'] as const;
export type CrmTable = (typeof CRM_TABLES)[number];

export type SyncDirection = 'Bidirectional' | 'ToCrm' | 'FromCrm';

export interface FieldMapping {
  /** An HQ attribute path (`email`, `address.city`) or `customerAccount`. */
  field: string;
  column: string;
  direction: SyncDirection;
}

export interface TableMapping {
  table: CrmTable;
  /** The row's primary key column. */
  idColumn: string;
  customerType: Customer['customerType'];
  fields: readonly FieldMapping[];
}

/** The HQ customer account is written into the row, so a CRM user sees which HQ customer it mirrors. */
export const CUSTOMER_ACCOUNT = 'customerAccount';

const both = (field: string, column: string): FieldMapping => ({ field, column, direction: 'Bidirectional' });

const CONTACT_DETAILS = [
  both('email', 'emailaddress1'),
  both('phone', 'telephone1'),
  both('address.street', 'address1_line1'),
  both('address.city', 'address1_city'),
  both('address.postalCode', 'address1_postalcode'),
  both('address.countryRegion', 'address1_country'),
];

export const MAPPINGS: Record<CrmTable, TableMapping> = {
  accounts: {
    table: 'accounts',
    idColumn: 'accountid',
    customerType: 'Organization',
    fields: [
      { field: CUSTOMER_ACCOUNT, column: 'accountnumber', direction: 'ToCrm' },
      both('organizationName', 'name'),
      ...CONTACT_DETAILS,
    ],
  },
  contacts: {
    table: 'contacts',
    idColumn: 'contactid',
    customerType: 'Person',
    fields: [
      // Contacts have no account number column; this text column is the one meant for an outside system's id.
      { field: CUSTOMER_ACCOUNT, column: 'externaluseridentifier', direction: 'ToCrm' },
      both('firstName', 'firstname'),
      both('lastName', 'lastname'),
      ...CONTACT_DETAILS,
    ],
  },
};

/** HQ fields a record can be matched on: those both tables synchronize, apart from the account HQ gives. */
export const MATCH_FIELDS = [
  'email',
  'phone',
  'address.street',
  'address.city',
  'address.postalCode',
  'address.countryRegion',
] as const;

export const tableFor = (customerType: Customer['customerType']): CrmTable =>
  customerType === 'Organization' ? 'accounts' : 'contacts';

/** The synchronized fields' values, by HQ field name: what both sides are compared on. */
export type Snapshot = Record<string, AttributeValue>;

/** The HQ side as the mapping reads it. */
export interface HqView {
  customerAccount?: string;
  customer: Customer;
}

const flowsToCrm = (f: FieldMapping) => f.direction !== 'FromCrm';
const flowsFromCrm = (f: FieldMapping) => f.direction !== 'ToCrm';

/** Text compared as the apps store it: the CRM has no "absent", only null, and an empty text is none. */
const normalize = (value: unknown): AttributeValue =>
  value === undefined || value === null || value === '' ? null : (value as AttributeValue);

export function hqSnapshot(mapping: TableMapping, hq: HqView): Snapshot {
  const snapshot: Snapshot = {};
  for (const f of mapping.fields) {
    snapshot[f.field] = normalize(f.field === CUSTOMER_ACCOUNT ? hq.customerAccount : valueAt(hq.customer, f.field));
  }
  return snapshot;
}

export function crmSnapshot(mapping: TableMapping, columns: Record<string, unknown>): Snapshot {
  const snapshot: Snapshot = {};
  for (const f of mapping.fields) snapshot[f.field] = normalize(columns[f.column]);
  return snapshot;
}

/** The CRM columns that carry these HQ field values (fields that do not flow to the CRM are left out). */
export function toColumns(mapping: TableMapping, values: Snapshot): Record<string, AttributeValue> {
  const columns: Record<string, AttributeValue> = {};
  for (const f of mapping.fields) if (flowsToCrm(f) && f.field in values) columns[f.column] = values[f.field]!;
  return columns;
}

/** An HQ edit carrying these CRM values (fields that do not flow to HQ, and the account, are left out). */
export function toHqChanges(mapping: TableMapping, values: Snapshot): Changes {
  const changes: Changes = {};
  for (const f of mapping.fields) {
    if (flowsFromCrm(f) && f.field !== CUSTOMER_ACCOUNT && f.field in values) changes[f.field] = values[f.field]!;
  }
  return changes;
}

export interface CustomerDefaults {
  customerGroup: string;
  currency: string;
}

/**
 * The HQ customer for a row created in the CRM: its mapped values plus the HQ-required fields a CRM row lacks
 * (as Business Central's customer templates). Not validated here: HQ's rules check it when the operation is
 * applied, so a row HQ refuses becomes a Failed operation an operator can repair like any other.
 */
export function customerFromRow(mapping: TableMapping, columns: Record<string, unknown>, defaults: CustomerDefaults) {
  const changes: Changes = {
    customerType: mapping.customerType,
    customerGroup: defaults.customerGroup,
    currency: defaults.currency,
  };
  for (const [field, value] of Object.entries(toHqChanges(mapping, crmSnapshot(mapping, columns)))) {
    if (value !== null) changes[field] = value;
  }
  return changes;
}

/** Columns to select when reading rows: the id and every mapped column. */
export const selectedColumns = (mapping: TableMapping) => [mapping.idColumn, ...mapping.fields.map((f) => f.column)];

export const columnOf = (mapping: TableMapping, field: string) => mapping.fields.find((f) => f.field === field)?.column;
