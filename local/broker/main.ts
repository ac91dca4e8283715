/** `node dist/local/broker/main.js [--port N] [--host H]`: runs the development broker until SIGINT/SIGTERM. */
import { parseArgs } from 'node:util';

import { closeOnSignals, runMain } from '../processes';
import { startDevBroker } from './index';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' } } });
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65_535)) {
    throw new Error(`--port must be an integer between 0 and 65535, got ${values.port}`);
  }
  const log = (line: string) => console.log(`[broker] ${line}`);
  const broker = await startDevBroker({ port, host: values.host, log });
  console.log(broker.connectionString);

  closeOnSignals(() => broker.close(), log);
}

runMain(main);
