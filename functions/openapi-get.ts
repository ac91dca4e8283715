import { app } from '@azure/functions';

import { anonymous, json } from '../shared/http/endpoint';
import { openApiDocument } from '../shared/http/openapi';

app.http('openapi-get', {
  methods: ['GET'],
  route: 'openapi.json',
  authLevel: 'anonymous',
  handler: anonymous(async () => json(200, openApiDocument())),
});
