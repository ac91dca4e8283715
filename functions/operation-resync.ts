import { app } from '@azure/functions';

import { DomainError } from '../shared/domain/errors';
import { endpoint, json, OPERATORS } from '../shared/http/endpoint';
import { operationParams } from '../shared/http/schemas';
import { acceptedSchema } from '../shared/http/views';
import { resyncOperation } from '../shared/operations/repair';

const operationResync = endpoint({
  name: 'operation-resync',
  method: 'POST',
  route: 'operations/{operationId}/sync',
  summary: 'Resync a Failed operation (Sync.Operator)',
  access: OPERATORS,
  request: { params: operationParams },
  responses: { 202: { description: 'Pending again', schema: acceptedSchema } },
  problems: [404, 409],
  handle: async ({ params, principal, ctx }) => {
    const { operationId } = params;
    const skipped = await resyncOperation(ctx, operationId, principal.subject);
    if (skipped === 'NOT_FOUND')
      throw new DomainError('OPERATION_NOT_FOUND', `Operation '${operationId}' was not found.`);
    if (skipped) {
      throw new DomainError(
        'INVALID_STATE',
        `Only a Failed operation whose failure is not final can be resynced: ${skipped}.`,
      );
    }
    return json(202, { operationId, status: 'Pending' });
  },
});
app.http(operationResync.name, operationResync.trigger);
