import { app } from '@azure/functions';

import { requireRole } from '../shared/http/auth';
import { authenticated, json } from '../shared/http/endpoint';
import { readJson } from '../shared/http/request';
import { operationEditSchema } from '../shared/http/schemas';
import { editFailedOperation } from '../shared/operations/repair';
import { toDetail } from '../shared/operations/views';

app.http('operation-update', {
  methods: ['PATCH'],
  route: 'operations/{operationId}',
  authLevel: 'anonymous',
  handler: authenticated(async ({ request, principal, ctx }) => {
    requireRole(principal, 'Sync.Operator');
    const { attributes } = await readJson(request, operationEditSchema);
    const { value, etag } = await editFailedOperation(
      ctx,
      request.params.operationId ?? '',
      request.headers.get('if-match'),
      attributes,
      principal.subject,
    );
    return json(200, toDetail(value), { ETag: etag });
  }),
});
