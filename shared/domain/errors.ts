import type { z } from 'zod';

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
  | 'ALREADY_COUPLED'
  | 'JOB_RUNNING'
  | 'SYNC_ERROR_CHANGED'
  | 'COUPLING_NOT_CONFIGURED'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'PAYLOAD_TOO_LARGE'
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

/** A zod error as field path → messages; an unknown key is named under its own path. */
export function fieldErrors(error: z.ZodError): FieldErrors {
  // Paths come from the client's keys: `constructor` or `__proto__` must be plain keys here, not inherited.
  const errors: FieldErrors = Object.create(null) as FieldErrors;
  const add = (path: string, message: string) => (errors[path] ??= []).push(message);
  for (const issue of error.issues) {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) add(path ? `${path}.${key}` : key, 'is not a known field');
    } else {
      add(path, issue.message);
    }
  }
  return errors;
}
