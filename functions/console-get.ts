import { join } from 'node:path';

import { app } from '@azure/functions';

import { settings } from '../shared/config';
import { consoleServer, consoleSite } from '../shared/http/console';

/**
 * The operator console's page and bundle (shared/http/console.ts), built into dist/console by `npm run build`.
 * A page rather than an API endpoint: no token to load it and no endpoint descriptor, so it stays out of the
 * OpenAPI document and the authorization matrix (the API calls it makes are in both).
 */
// Built at the first request, when the settings are read (as every entry point reads them, through settings()).
let serve: ReturnType<typeof consoleServer> | undefined;

app.http('console-get', {
  methods: ['GET'],
  route: 'console/{*path}',
  authLevel: 'anonymous',
  handler: async (request) => {
    serve ??= consoleServer(join(__dirname, '..', 'console'), consoleSite(settings()));
    return serve(request.url, request.params.path ?? '');
  },
});
