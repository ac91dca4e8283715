import { app } from '@azure/functions';

import { DomainError } from '../shared/domain/errors';
import { isChannelOnly } from '../shared/http/auth';
import { CHANNELS, endpoint, json, READERS } from '../shared/http/endpoint';
import { listQuerySchema } from '../shared/http/schemas';
import { operationPageSchema } from '../shared/http/views';
import { operationsCsv } from '../shared/operations/export';
import { toFilter } from '../shared/operations/filter';
import { listOperations } from '../shared/operations/list';

const operationsList = endpoint({
  name: 'operations-list',
  method: 'GET',
  route: 'operations',
  summary: 'Find operations, newest first; Accept: text/csv exports every match (Sync.Reader; a channel sees its own)',
  access: [...READERS, ...CHANNELS],
  request: { query: listQuerySchema },
  responses: { 200: { description: 'A page of operations, or CSV', schema: operationPageSchema, csv: true } },
  handle: async ({ request, query, principal, ctx }) => {
    const { top, continuationToken, ...raw } = query;
    const filter = toFilter(raw);
    // A channel sees only its own operations.
    if (isChannelOnly(principal)) {
      if (filter.channel !== undefined && filter.channel !== principal.channel) {
        throw new DomainError('FORBIDDEN', `This token may only read channel '${principal.channel}'.`);
      }
      filter.channel = principal.channel;
    }
    if (/\btext\/csv\b/i.test(request.headers.get('accept') ?? '')) {
      return {
        status: 200,
        headers: {
          'Content-Type': 'text/csv; charset=utf-8',
          'Content-Disposition': 'attachment; filename="operations.csv"',
        },
        body: await operationsCsv(ctx, filter),
      };
    }
    return json(200, await listOperations(ctx, filter, top, continuationToken));
  },
});
app.http(operationsList.name, operationsList.trigger);
