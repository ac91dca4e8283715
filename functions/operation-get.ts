import { app } from '@azure/functions';

import { DomainError } from '../shared/domain/errors';
import { isChannelOnly, requireRole } from '../shared/http/auth';
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
    // A channel sees only its own operations.
    if (isChannelOnly(principal) && value.channel !== principal.channel) {
      throw new DomainError('FORBIDDEN', `Operation '${operationId}' belongs to another channel.`);
    }
    return json(200, toDetail(value), { ETag: etag });
  }),
});
