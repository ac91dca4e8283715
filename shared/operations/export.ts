import type { SyncContext } from './context';
import type { OperationFilter } from './filter';
import { allOperations } from './list';

const COLUMNS = [
  'operationId',
  'channel',
  'type',
  'status',
  'operationTimestamp',
  'customerAccount',
  'asyncCustomerAccount',
  'changeDescription',
  'lastErrorCode',
  'lastErrorMessage',
] as const;

/**
 * Every operation matching the filter as CSV (RFC 4180), produced page by page so memory stays flat however
 * many rows there are. Cells that a spreadsheet would run as a formula are prefixed with a quote.
 */
export async function* operationsCsv(ctx: SyncContext, filter: OperationFilter): AsyncIterable<Uint8Array> {
  yield Buffer.from(`${COLUMNS.join(',')}\r\n`);
  for await (const op of allOperations(ctx, filter)) {
    const row = [
      op.operationId,
      op.channel,
      op.type,
      op.status,
      op.operationTimestamp,
      op.customerAccount,
      op.asyncCustomerAccount,
      op.changeDescription,
      op.lastError?.code,
      op.lastError?.message,
    ];
    yield Buffer.from(`${row.map(cell).join(',')}\r\n`);
  }
}

function cell(value: string | undefined): string {
  if (value === undefined) return '';
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
