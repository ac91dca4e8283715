import { app } from '@azure/functions';

import { DomainError } from '../shared/domain/errors';
import { isChannelOnly } from '../shared/http/auth';
import { CHANNELS, endpoint, json, READERS } from '../shared/http/endpoint';
import { operationParams } from '../shared/http/schemas';
import { detailOf, operationDetailSchema } from '../shared/http/views';
import { getOperation } from '../shared/operations/queries';

const operationGet = endpoint({
  name: 'operation-get',
  method: 'GET',
  route: 'operations/{operationId}',
  summary: 'One operation with its attribute grid, last known error and history (ETag); a channel sees its own',
  access: [...READERS, ...CHANNELS],
  request: { params: operationParams },
  responses: { 200: { description: 'The operation', schema: operationDetailSchema } },
  problems: [404],
  handle: async ({ params, principal, ctx }) => {
    const { value, etag } = await getOperation(ctx, params.operationId);
    if (isChannelOnly(principal) && value.channel !== principal.channel) {
      throw new DomainError('FORBIDDEN', `Operation '${params.operationId}' belongs to another channel.`);
    }
    return json(200, detailOf(value), { ETag: etag });
  },
});
app.http(operationGet.name, operationGet.trigger);
