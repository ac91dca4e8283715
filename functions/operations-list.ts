import { app } from '@azure/functions';

import { DomainError } from '../shared/domain/errors';
import { isChannelOnly, requireRole } from '../shared/http/auth';
import { authenticated, json } from '../shared/http/endpoint';
import { readQuery } from '../shared/http/request';
import { listQuerySchema } from '../shared/http/schemas';
import { operationsCsv } from '../shared/operations/export';
import { toFilter } from '../shared/operations/filter';
import { listOperations } from '../shared/operations/list';
import { toSummary } from '../shared/operations/views';

app.http('operations-list', {
  methods: ['GET'],
  route: 'operations',
  authLevel: 'anonymous',
  handler: authenticated(async ({ request, principal, ctx }) => {
    requireRole(principal, 'Sync.Reader', 'Sync.Operator', 'Channel');
    const { top, continuationToken, ...raw } = readQuery(request, listQuerySchema);
    const filter = toFilter(raw);
    // A channel sees only its own operations.
    if (isChannelOnly(principal)) {
      if (principal.channel === undefined) throw new DomainError('FORBIDDEN', 'This Channel token names no channel.');
      if (filter.channel !== undefined && filter.channel !== principal.channel) {
        throw new DomainError('FORBIDDEN', `This token may only read channel '${principal.channel ?? '(none)'}'.`);
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
    const page = await listOperations(ctx, filter, top, continuationToken);
    return json(200, {
      items: page.items.map(toSummary),
      ...(page.continuationToken ? { continuationToken: page.continuationToken } : {}),
    });
  }),
});
