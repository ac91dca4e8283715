import type { TestProject } from 'vitest/node' with { 'resolution-mode': 'import' };

import { startAzurite } from '../local/azurite';
import { startDevBroker } from '../local/broker';
import { startDevDataverse } from '../local/dataverse';
import { seconds, settlesWithin } from '../local/deadline';

declare module 'vitest' {
  export interface ProvidedContext {
    storageConnectionString: string;
    serviceBusConnectionString: string;
    /** The development Dataverse's server URL (dynamics-web-api's serverUrl), e.g. http://127.0.0.1:PORT. */
    dataverseUrl: string;
  }
}

/**
 * Owns the emulators for the whole run: Azurite (in memory), the development Service Bus broker and the
 * development Dataverse (in memory, no rate limit), each on a free port. Tests isolate themselves with their own
 * table prefix, queue name, and CRM rows of their own.
 */
export default async function setup(project: TestProject) {
  const [azurite, broker, dataverse] = await Promise.all([
    startAzurite(),
    startDevBroker({ port: 0, maxDeliveryCount: 5 }),
    startDevDataverse({ port: 0 }),
  ]);
  project.provide('storageConnectionString', azurite.connectionString);
  project.provide('serviceBusConnectionString', broker.connectionString);
  project.provide('dataverseUrl', dataverse.url);
  // Each close is bounded (Azurite is killed after 5 s, the broker and Dataverse cut their sockets). Vitest waits
  // for a global teardown without a timeout, so this limit keeps a close that fails to keep its bound from holding
  // the run.
  const teardownLimitMs = 8000;
  return async () => {
    const closed = Promise.all([azurite.close(), broker.close(), dataverse.close()]);
    if (!(await settlesWithin(closed, teardownLimitMs))) {
      console.warn(`global teardown: the emulators did not stop within ${seconds(teardownLimitMs)}; leaving them`);
    }
  };
}
