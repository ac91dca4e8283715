import { type OperationSummary, SUMMARY_FIELDS } from '../domain/operation';
import type { SyncContext } from './context';
import type { OperationFilter } from './filter';
import { listOperations, type OperationPage } from './list';

/** The summary's fields in its order, the last error as two columns. */
const COLUMNS = SUMMARY_FIELDS.flatMap((field) =>
  field === 'lastError' ? ['lastErrorCode', 'lastErrorMessage'] : [field],
);
const cellsOf = (op: OperationSummary) =>
  SUMMARY_FIELDS.flatMap((field) =>
    field === 'lastError' ? [op.lastError?.code, op.lastError?.message] : [op[field]],
  );

const PAGE = 500;

/**
 * Every operation matching the filter as CSV (RFC 4180), produced page by page so memory stays flat however
 * many rows there are. The first page is read before anything is sent, so an invalid filter or an
 * unavailable store is still an error response, not a truncated 200. Cells that a spreadsheet would run as
 * a formula are prefixed with a quote.
 */
export async function operationsCsv(ctx: SyncContext, filter: OperationFilter): Promise<AsyncIterable<Uint8Array>> {
  const first = await listOperations(ctx, filter, PAGE);
  return (async function* () {
    yield Buffer.from(`${COLUMNS.join(',')}\r\n`);
    let page: OperationPage | undefined = first;
    while (page) {
      for (const op of page.items) yield Buffer.from(`${cellsOf(op).map(cell).join(',')}\r\n`);
      page = page.continuationToken ? await listOperations(ctx, filter, PAGE, page.continuationToken) : undefined;
    }
  })();
}

function cell(value: string | undefined): string {
  if (value === undefined) return '';
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
