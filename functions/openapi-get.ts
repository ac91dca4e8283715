import { app } from '@azure/functions';

import { endpoint, json } from '../shared/http/endpoint';
import { openApiDocument } from '../shared/http/openapi';

const openApi = endpoint({
  name: 'openapi-get',
  method: 'GET',
  route: 'openapi.json',
  summary: 'This document (no token)',
  access: 'anonymous',
  request: {},
  responses: { 200: { description: 'OpenAPI 3.1' } },
  handle: async () => json(200, openApiDocument()),
});
app.http(openApi.name, openApi.trigger);
