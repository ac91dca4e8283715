/**
 * The errors the development Dataverse answers with, in Dataverse's body shape
 * `{"error":{"code":"0x…","message":"…"}}`, so a client (and dynamics-web-api, which copies `code` and `message`
 * onto the error it throws) can tell them apart exactly as it would against a real environment. Codes and messages
 * are Dataverse's own where its documentation gives them (named below); the rest say what this server does not do.
 */

export class DataverseError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

/** Dataverse's logical name of a table is its entity set name without the plural s (accounts → account). */
const logicalName = (table: string) => table.replace(/s$/, '');

export const errors = {
  // ObjectDoesNotExist; the message is the one in "Perform conditional operations using the Web API".
  rowNotFound: (table: string, id: string) =>
    new DataverseError(404, '0x80040217', `${logicalName(table)} With Id = ${id} Does Not Exist`),
  // What Dataverse's OData layer answers for an entity set it does not have.
  unknownSegment: (segment: string) =>
    new DataverseError(404, '0x80060888', `Resource not found for the segment '${segment}'.`),
  // DuplicateRecord: a create with an id that is taken, and an upsert with If-None-Match: * on an existing row.
  duplicateKey: () => new DataverseError(412, '0x80040237', 'A record with matching key values already exists.'),
  // ConcurrencyVersionMismatch: If-Match with an ETag that is no longer the row's.
  versionMismatch: () =>
    new DataverseError(
      412,
      '0x80060882',
      "The version of the existing record doesn't match the RowVersion property provided.",
    ),
  // ExpiredVersionStamp: Dataverse's answer to a change tracking token older than its retention. A client
  // falls back to a full read on this code.
  deltaTokenExpired: () =>
    new DataverseError(
      400,
      '0x80044352',
      'Version stamp associated with the client has expired. Please perform a full sync.',
    ),
  invalidDeltaToken: (token: string) =>
    new DataverseError(400, '0x80044183', `Invalid version stamp: the delta token '${token}' was not issued here.`),
  // Service protection, number of requests ("Service protection API limits").
  throttled: (retryAfterSeconds: number, maxRequests: number, windowMs: number) =>
    new DataverseError(
      429,
      '0x80072322',
      `Number of requests exceeded the limit of ${maxRequests} over time window of ${windowMs / 1000} seconds.`,
      { 'Retry-After': String(retryAfterSeconds) },
    ),
  // A malformed $filter, $select, $orderby or key: Dataverse's OData parser errors carry this code.
  badQuery: (message: string) => new DataverseError(400, '0x80060888', message),
  // "Error identified in Payload provided by the user for Entity": a body Dataverse cannot read.
  badPayload: (table: string, detail: string) =>
    new DataverseError(
      400,
      '0x80048d19',
      `Error identified in Payload provided by the user for Entity :'${table}'. ${detail}`,
    ),
  // No code: Dataverse itself answers a missing token with a bare 401 and a WWW-Authenticate challenge.
  unauthorized: () =>
    new DataverseError(
      401,
      '',
      'The request has no bearer token. The development Dataverse accepts any non-empty one.',
      { 'WWW-Authenticate': 'Bearer' },
    ),
  tooLarge: (limitBytes: number) =>
    new DataverseError(
      413,
      '',
      `The request body is larger than ${limitBytes} bytes, the development Dataverse's limit.`,
    ),
  methodNotAllowed: (method: string, path: string) =>
    new DataverseError(405, '', `${method} is not supported on ${path}.`),
  notSupported: (what: string) => new DataverseError(501, '', `${what} is not supported by the development Dataverse.`),
  // UnexpectedError, as Dataverse reports a failure of its own.
  internal: () => new DataverseError(500, '0x80040216', 'An unexpected error occurred.'),
  injected: (status: number) =>
    new DataverseError(
      status,
      '0x80040216',
      'An unexpected error occurred. (Injected by a development Dataverse fault switch.)',
    ),
} as const;
