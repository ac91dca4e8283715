import type { TestProject } from 'vitest/node' with { 'resolution-mode': 'import' };

import { startAzurite } from '../local/azurite';
import { startDevBroker } from '../local/broker';

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
  return async () => {
    await Promise.all([azurite.close(), broker.close()]);
  };
}
