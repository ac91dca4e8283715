import { app } from '@azure/functions';

import { endpoint, json, OPERATORS } from '../shared/http/endpoint';
import { ifMatchHeaders, operationEditSchema, operationParams } from '../shared/http/schemas';
import { detailOf, operationDetailSchema } from '../shared/http/views';
import { editFailedOperation } from '../shared/operations/repair';

const operationUpdate = endpoint({
  name: 'operation-update',
  method: 'PATCH',
  route: 'operations/{operationId}',
  summary: 'Edit the new values of a Failed operation (Sync.Operator; If-Match required)',
  access: OPERATORS,
  request: { params: operationParams, headers: ifMatchHeaders, body: operationEditSchema },
  responses: { 200: { description: 'The edited operation', schema: operationDetailSchema } },
  problems: [404, 409, 412],
  handle: async ({ params, headers, body, principal, ctx }) => {
    const { operationId } = params;
    const edits = body.attributes; // the API calls an operator's edit of the attribute grid `attributes`
    const { value, etag } = await editFailedOperation(ctx, operationId, headers['if-match'], edits, principal.subject);
    return json(200, detailOf(value), { ETag: etag });
  },
});
app.http(operationUpdate.name, operationUpdate.trigger);
