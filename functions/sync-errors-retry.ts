import { app } from '@azure/functions';

import { retryAll } from '../shared/coupling/actions';
import { endpoint, json, OPERATORS } from '../shared/http/endpoint';
import { retryAllBodySchema } from '../shared/http/schemas';
import { retryAllAnswerSchema } from '../shared/http/views';

const syncErrorsRetry = endpoint({
  name: 'sync-errors-retry',
  method: 'POST',
  route: 'sync-errors/retry',
  summary: 'Retry all: retry every record with an error (of one kind, if given) (Sync.Operator)',
  access: OPERATORS,
  request: { body: retryAllBodySchema },
  responses: { 202: { description: 'How many records the next run takes again', schema: retryAllAnswerSchema } },
  problems: [409],
  handle: async ({ body, principal, ctx }) => json(202, await retryAll(ctx, body.kind, principal.subject)),
});
app.http(syncErrorsRetry.name, syncErrorsRetry.trigger);
