import { app } from '@azure/functions';

import { DomainError } from '../shared/domain/errors';
import { requireRole } from '../shared/http/auth';
import { authenticated, json } from '../shared/http/endpoint';
import { resyncOperation } from '../shared/operations/repair';

app.http('operation-resync', {
  methods: ['POST'],
  route: 'operations/{operationId}/sync',
  authLevel: 'anonymous',
  handler: authenticated(async ({ request, principal, ctx }) => {
    requireRole(principal, 'Sync.Operator');
    const operationId = request.params.operationId ?? '';
    const skipped = await resyncOperation(ctx, operationId, principal.subject);
    if (skipped === 'NOT_FOUND')
      throw new DomainError('OPERATION_NOT_FOUND', `Operation '${operationId}' was not found.`);
    if (skipped) throw new DomainError('INVALID_STATE', `Only a Failed operation can be resynced: ${skipped}.`);
    return json(202, { operationId, status: 'Pending' });
  }),
});
