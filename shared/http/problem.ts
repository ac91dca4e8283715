import { DomainError, type ErrorCode, type FieldErrors } from '../domain/errors';

/** The one table from error code to HTTP status. */
const STATUS: Record<ErrorCode, number> = {
  VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  OPERATION_NOT_FOUND: 404,
  CUSTOMER_NOT_FOUND: 404,
  INVALID_STATE: 409,
  ALREADY_COUPLED: 409,
  JOB_RUNNING: 409,
  SYNC_ERROR_CHANGED: 409,
  COUPLING_NOT_CONFIGURED: 409,
  ETAG_MISMATCH: 412,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  IDEMPOTENCY_KEY_REUSED: 422,
  PRECONDITION_REQUIRED: 428,
  INTERNAL_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
};

const TITLE: Record<ErrorCode, string> = {
  VALIDATION_FAILED: 'The request is not valid',
  UNAUTHENTICATED: 'Authentication required',
  FORBIDDEN: 'Not allowed',
  NOT_FOUND: 'Not found',
  OPERATION_NOT_FOUND: 'Operation not found',
  CUSTOMER_NOT_FOUND: 'Customer not found',
  ALREADY_COUPLED: 'Already coupled',
  JOB_RUNNING: 'The job is already running',
  SYNC_ERROR_CHANGED: 'The record changed since its error was recorded',
  COUPLING_NOT_CONFIGURED: 'Coupling is not configured',
  INVALID_STATE: 'Not possible in the current state',
  ETAG_MISMATCH: 'The resource changed',
  PAYLOAD_TOO_LARGE: 'Request body too large',
  UNSUPPORTED_MEDIA_TYPE: 'Unsupported content type',
  IDEMPOTENCY_KEY_REUSED: 'Idempotency key reused',
  PRECONDITION_REQUIRED: 'If-Match required',
  INTERNAL_ERROR: 'Internal error',
  SERVICE_UNAVAILABLE: 'Service unavailable',
};

export interface HttpResult {
  status: number;
  headers?: Record<string, string>;
  jsonBody?: unknown;
  /** A string, or bytes produced as they are ready (large exports). */
  body?: string | AsyncIterable<Uint8Array>;
}

/** An RFC 9457 problem details response. Never carries a stack trace. */
export function problem(
  code: ErrorCode,
  detail: string,
  errors?: FieldErrors,
  headers?: Record<string, string>,
): HttpResult {
  const status = STATUS[code];
  return {
    status,
    headers: { 'Content-Type': 'application/problem+json', ...headers },
    body: JSON.stringify({
      type: `urn:customer-sync:problem:${code.toLowerCase().replace(/_/g, '-')}`,
      title: TITLE[code],
      status,
      detail,
      code,
      ...(errors ? { errors } : {}),
    }),
  };
}

/** Headers that come with a code: how to authenticate, or when to try again. */
const HEADERS: Partial<Record<ErrorCode, Record<string, string>>> = {
  UNAUTHENTICATED: { 'WWW-Authenticate': 'Bearer' },
  SERVICE_UNAVAILABLE: { 'Retry-After': '5' },
};

export const problemOf = (error: DomainError) => problem(error.code, error.message, error.errors, HEADERS[error.code]);
