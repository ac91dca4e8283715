/** The API's shapes the console reads (API.md; GET /api/openapi.json describes them fully). */
export interface LastError {
  code: string;
  message: string;
  at: string;
}

export interface OperationSummary {
  operationId: string;
  channel: string;
  type: string;
  status: string;
  operationTimestamp: string;
  customerAccount?: string;
  asyncCustomerAccount?: string;
  changeDescription: string;
  lastError?: LastError;
}

export interface AttributeChange {
  name: string;
  oldValue: unknown;
  newValue: unknown;
}

export interface OperationDetail extends OperationSummary {
  attributes: AttributeChange[];
  attempts: number;
  waitingOn?: string;
  history: { at: string; status: string; detail: string; by?: string }[];
}

export interface Page<T> {
  items: T[];
  continuationToken?: string;
}

export interface SyncError {
  customerAccount: string;
  crmTable: string;
  crmId: string;
  kind: string;
  message: string;
  failedOn: string;
  skipped: boolean;
  hqExists: boolean;
  crmExists: boolean;
  differences?: { field: string; crmField: string; hqValue: unknown; crmValue: unknown }[];
  actions: string[];
}

export interface JobRun {
  job: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  counts: Record<string, number>;
  directions?: Record<string, Record<string, number>>;
  message: string;
}
