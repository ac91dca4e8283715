import { randomUUID } from 'node:crypto';

import {
  createHttpHeaders,
  createPipelineRequest,
  type PipelineRequest,
  type PipelineResponse,
  RestError,
} from '@azure/core-rest-pipeline';
import type {
  TableClient,
  TableEntity,
  TableTransactionEntityResponse,
  TableTransactionResponse,
  UpdateMode,
} from '@azure/data-tables';

/**
 * Entity-group transactions (OData `$batch`) sent over the table client's own pipeline and HTTP client.
 *
 * `TableClient.submitTransaction` of @azure/data-tables 13.x builds a second TableClient (a whole pipeline) for
 * every transaction and runs every action through a pass of that pipeline only to capture the sub-request it would
 * have sent; that costs host CPU on every write. It also sends `If-Match: *` for every delete, so a transaction
 * cannot delete only the version it read. This module writes the same request body the SDK writes (same
 * sub-request lines and headers, same entity serialization, so the service stores the same entities), sends it
 * through `TableClient`'s pipeline (auth — SharedKey or a token credential —, retries, `allowInsecureConnection`
 * and any policy added through the client options apply as to the SDK's own calls), and reads the answer the way
 * the SDK does: sub-responses' status and ETag in order, or a RestError with the failing action's status, code and
 * message.
 *
 * Hand-written because the SDK exports none of the parts (its entity serializer, body builder and response parser
 * are internal) and no other library speaks the Tables `$batch` dialect. Azure Storage and Azurite only: the SDK's
 * Cosmos DB rewrite of sub-requests is not reproduced.
 */

/** An action, as `TransactionAction` of the SDK, plus an ETag condition on a delete. */
export type Action =
  | readonly ['create', TableEntity]
  | readonly ['upsert', TableEntity, UpdateMode?]
  | readonly ['update', TableEntity, UpdateMode?, { etag?: string }?]
  | readonly ['delete', TableEntity, { etag?: string }?];

/**
 * Sends `actions` (one partition, at most 100) as one transaction: all land or none does. Resolves with each
 * action's status and ETag, in order; a failing action rejects the whole with a RestError carrying its status
 * (404, 409, 412, ...), the service's error code and message, as `TableClient.submitTransaction` does. Update and
 * upsert default to Merge, like the SDK's; update and delete default to `If-Match: *`.
 */
export async function submitTransaction(
  table: TableClient,
  actions: readonly Action[],
): Promise<TableTransactionResponse> {
  const { sender, allowInsecureConnection } = internals(table);
  const partitionKey = actions[0]?.[1].partitionKey;
  const [base = '', query] = table.url.split('?');
  const account = base.endsWith('/') ? base : `${base}/`;
  const tableUrl = `${account}${encodeURIComponent(table.tableName)}`;
  const batchId = randomUUID();
  const changesetId = randomUUID();
  const parts = [
    `--batch_${batchId}${CRLF}content-type: multipart/mixed; boundary=changeset_${changesetId}${CRLF}${CRLF}`,
  ];
  for (const action of actions) {
    if (action[1].partitionKey !== partitionKey) {
      throw new Error('All operations in a transaction must target the same partitionKey');
    }
    parts.push(subRequest(changesetId, tableUrl, action));
  }
  const body = `${parts.join(CRLF)}${CRLF}--changeset_${changesetId}--${CRLF}--batch_${batchId}--${CRLF}`;
  const request = createPipelineRequest({
    url: `${account}$batch${query === undefined ? '' : `?${query}`}`,
    method: 'POST',
    body,
    headers: createHttpHeaders({
      accept: 'application/json',
      'x-ms-version': '2019-02-02',
      DataServiceVersion: '3.0;',
      MaxDataServiceVersion: '3.0;NetFx',
      'Content-Type': `multipart/mixed; boundary=batch_${batchId}`,
      'Accept-Charset': 'UTF-8',
      Connection: 'Keep-Alive',
    }),
    allowInsecureConnection,
  });
  return parseResponse(await sender.sendRequest(request));
}

const CRLF = '\r\n';

/** One action as the SDK writes it (TablePolicies.js getNextSubrequestBodyPart, after the generated client's
 * serialization): the part headers, the request line, the operation's headers, an empty line, the JSON body. */
function subRequest(changesetId: string, tableUrl: string, action: Action): string {
  const lines = [
    `--changeset_${changesetId}${CRLF}content-type: application/http${CRLF}content-transfer-encoding: binary`,
    '',
  ];
  const [kind, entity] = action;
  if (kind === 'create') {
    lines.push(
      `POST ${tableUrl} HTTP/1.1`,
      'Content-Type: application/json;odata=nometadata',
      'Accept: application/json;odata=minimalmetadata',
      'DataServiceVersion: 3.0',
      'Prefer: return-no-content',
    );
  } else {
    const entityUrl = `${tableUrl}(PartitionKey='${keyInUrl(entity.partitionKey)}',RowKey='${keyInUrl(entity.rowKey)}')`;
    if (kind === 'delete') {
      lines.push(
        `DELETE ${entityUrl} HTTP/1.1`,
        'Accept: application/json;odata=minimalmetadata',
        'DataServiceVersion: 3.0',
        `If-Match: ${action[2]?.etag ?? '*'}`,
      );
    } else {
      const mode = action[2] ?? 'Merge';
      if (mode !== 'Merge' && mode !== 'Replace') throw new Error(`Unexpected value for update mode: ${String(mode)}`);
      lines.push(
        `${mode === 'Merge' ? 'PATCH' : 'PUT'} ${entityUrl} HTTP/1.1`,
        'Content-Type: application/json',
        'DataServiceVersion: 3.0',
        'Accept: application/json',
      );
      // An upsert has no condition; an update is conditional, on any version (`*`) unless an ETag is given.
      if (kind === 'update') lines.push(`If-Match: ${action[3]?.etag ?? '*'}`);
    }
  }
  lines.push(CRLF);
  if (kind !== 'delete') lines.push(JSON.stringify(serialize(entity)));
  return lines.join(CRLF);
}

/** A key inside the entity URL: quotes doubled (OData), then URI-encoded, as the SDK does. */
function keyInUrl(key: string | undefined): string {
  if (key === undefined || key === null)
    throw new Error("The entity's partitionKey and rowKey cannot be undefined or null.");
  return encodeURIComponent(key.replace(/'/g, "''"));
}

const PROPERTY_NAMES: Record<string, string> = {
  partitionKey: 'PartitionKey',
  rowKey: 'RowKey',
  etag: 'odata.etag',
  timestamp: 'Timestamp',
};
const EDM_TYPES = new Set(['Boolean', 'DateTime', 'Double', 'Guid', 'Int32', 'Int64', 'String', 'Binary']);

/**
 * An entity as the SDK serializes it (serialization.js `serialize`): strings, numbers, booleans and null as they
 * are (the service types a JSON integer as Int32 or Int64 by its size, other numbers as Double), undefined
 * omitted; a bigint as an Int64, a Date as a DateTime (ISO text), bytes as Binary (base64), and an `{ value, type }`
 * object as that EDM type, each with its `<name>@odata.type` annotation.
 */
function serialize(entity: TableEntity): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(entity)) {
    const key = PROPERTY_NAMES[name] ?? name;
    let type: string | undefined;
    let written: unknown = value;
    if (value === undefined || value === null || ['boolean', 'string', 'number'].includes(typeof value)) {
      // as it is
    } else if (typeof value === 'bigint') {
      written = value.toString();
      type = 'Int64';
    } else if (value instanceof Date) {
      type = 'DateTime';
    } else if (value instanceof Uint8Array) {
      // Only the view's bytes (the SDK encodes the view's whole underlying buffer; alike for a plain array).
      written = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
      type = 'Binary';
    } else if (isEdmObject(value)) {
      written = value.value;
      type = value.type;
    } else {
      throw new Error(`Unknown EDM type ${typeof value}`);
    }
    out[key] = written;
    if (type) out[`${key}@odata.type`] = `Edm.${type}`;
  }
  return out;
}

function isEdmObject(value: unknown): value is { value: unknown; type: string } {
  if (typeof value !== 'object' || value === null) return false;
  const { value: inner, type } = value as { value?: unknown; type?: unknown };
  if (inner === undefined || type === undefined) return false;
  if (typeof type !== 'string' || !EDM_TYPES.has(type)) throw new Error(`Unknown EDM type ${typeof inner}`);
  return true;
}

/** The answer, read as the SDK reads it (TableTransaction.js parseTransactionResponse). */
function parseResponse(response: PipelineResponse): TableTransactionResponse {
  const { status } = response;
  const rawBody = response.bodyAsText ?? '';
  if (status < 200 || status >= 300) throw bodyError(rawBody, status, response);
  // The first part is the batch boundary and the last the changeset's end: the rest are the sub-responses.
  const subResponses: TableTransactionEntityResponse[] = rawBody
    .split('--changesetresponse_')
    .slice(1, -1)
    .map((part) => {
      const subStatus = Number.parseInt(/HTTP\/1.1 ([0-9]*)/.exec(part)?.[1] ?? '', 10);
      if (!Number.isInteger(subStatus)) throw new Error(`Couldn't extract status from sub-response:\n ${part}`);
      // Only a failed action has a body (an odata.error); a transaction with one fails as a whole.
      const errorBody = /\{(.*)\}/.exec(part);
      if (errorBody) throw bodyError(errorBody[0], subStatus, response);
      const etag = /ETag: ([^\r\n]*)/.exec(part)?.[1]; // the line without its CRLF (the SDK keeps the CR)
      const rowKey = /RowKey='(.*)'/.exec(part)?.[1];
      return { status: subStatus, ...(rowKey !== undefined && { rowKey }), ...(etag !== undefined && { etag }) };
    });
  return {
    status,
    subResponses,
    getResponseForEntity: (rowKey: string) => subResponses.find((r) => r.rowKey === rowKey),
  };
}

function bodyError(text: string, statusCode: number, response: PipelineResponse): RestError {
  let parsed: { 'odata.error'?: { code?: string; message?: { value?: string } } } = {};
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    // not JSON: the generic message below
  }
  const error = parsed?.['odata.error'];
  return new RestError(error?.message?.value ?? 'Transaction Failed', {
    code: error?.code,
    statusCode,
    request: response.request,
    response,
  });
}

interface Sender {
  sendRequest(request: PipelineRequest): Promise<PipelineResponse>;
}

/**
 * The TableClient's generated service client, whose `sendRequest` runs a request through `table.pipeline` and the
 * client's HTTP client (the one the SDK's calls use, so they share connections), and its allowInsecureConnection
 * setting. Both are private fields of TableClient (13.x), which the SDK's own submitTransaction uses the same way;
 * the check makes an SDK that moved them fail loudly rather than send differently.
 */
function internals(table: TableClient): { sender: Sender; allowInsecureConnection: boolean } {
  const client = table as unknown as {
    generatedClient?: { sendRequest?: unknown; pipeline?: unknown };
    allowInsecureConnection?: unknown;
  };
  const sender = client.generatedClient;
  if (typeof sender?.sendRequest !== 'function' || sender.pipeline !== table.pipeline) {
    throw new Error('@azure/data-tables: TableClient no longer has the generated client this module sends through');
  }
  return { sender: sender as unknown as Sender, allowInsecureConnection: client.allowInsecureConnection === true };
}
