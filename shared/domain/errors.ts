/**
 * Typed domain errors with stable string codes. The HTTP layer maps each code to a status in one table
 * (shared/http/problem.ts), so use cases never think in HTTP.
 */
export type ErrorCode =
  | 'VALIDATION_FAILED'
  | 'NOT_FOUND'
  | 'OPERATION_NOT_FOUND'
  | 'CUSTOMER_NOT_FOUND'
  | 'ETAG_MISMATCH'
  | 'PRECONDITION_REQUIRED'
  | 'INVALID_STATE'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PAYLOAD_TOO_LARGE'
  | 'METHOD_NOT_ALLOWED'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_ERROR';

export type FieldErrors = Record<string, string[]>;

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly errors?: FieldErrors,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const notFound = (what: string, id: string, code: ErrorCode = 'NOT_FOUND') =>
  new DomainError(code, `${what} '${id}' was not found.`);
