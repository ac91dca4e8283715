import type { TestProject } from 'vitest/node' with { 'resolution-mode': 'import' };

import { startAzurite } from '../local/azurite';
import { startDevBroker } from '../local/broker';
import { seconds, settlesWithin } from '../local/deadline';

declare module 'vitest' {
  export interface ProvidedContext {
    storageConnectionString: string;
    serviceBusConnectionString: string;
  }
}

/**
 * Owns the emulators for the whole run: Azurite (in memory) and the development Service Bus broker, each on
 * a free port. Tests isolate themselves with their own table prefix and queue name.
 */
export default async function setup(project: TestProject) {
  const [azurite, broker] = await Promise.all([startAzurite(), startDevBroker({ port: 0, maxDeliveryCount: 5 })]);
  project.provide('storageConnectionString', azurite.connectionString);
  project.provide('serviceBusConnectionString', broker.connectionString);
  // Each close is bounded (Azurite is killed after 5 s, the broker cuts its sockets). Vitest waits for a global
  // teardown without a timeout, so this limit keeps a close that fails to keep its bound from holding the run.
  const teardownLimitMs = 8000;
  return async () => {
    if (!(await settlesWithin(Promise.all([azurite.close(), broker.close()]), teardownLimitMs))) {
      console.warn(`global teardown: the emulators did not stop within ${seconds(teardownLimitMs)}; leaving them`);
    }
  };
}
