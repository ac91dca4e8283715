import { app } from '@azure/functions';

import { notFound } from '../shared/domain/errors';
import { requireRole } from '../shared/http/auth';
import { authenticated, json } from '../shared/http/endpoint';
import { getOperation } from '../shared/operations/queries';
import { toDetail } from '../shared/operations/views';

app.http('operation-get', {
  methods: ['GET'],
  route: 'operations/{operationId}',
  authLevel: 'anonymous',
  handler: authenticated(async ({ request, principal, ctx }) => {
    requireRole(principal, 'Sync.Reader', 'Sync.Operator', 'Channel');
    const operationId = request.params.operationId ?? '';
    const { value, etag } = await getOperation(ctx, operationId);
    // A channel sees only its own operations; to it, another channel's operation does not exist.
    const ownOnly = !principal.roles.some((r) => r !== 'Channel');
    if (ownOnly && value.channel !== principal.channel) throw notFound('Operation', operationId, 'OPERATION_NOT_FOUND');
    return json(200, toDetail(value), { ETag: etag });
  }),
});
