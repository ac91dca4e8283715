/**
 * `node dist/local/dataverse/main.js [--port N] [--host H] [--data FILE] [--max-requests N --window-ms MS]`: runs
 * the development Dataverse until SIGINT/SIGTERM. With --data the tables are kept in FILE across restarts; with
 * --max-requests it answers 429 above that many requests per --window-ms (default 300 000, Dataverse's window).
 */
import { parseArgs } from 'node:util';

import { closeOnSignals, runMain } from '../processes';
import { startDevDataverse } from './index';

function integer(
  name: string,
  value: string | undefined,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!(Number.isInteger(parsed) && parsed >= min && parsed <= max)) {
    throw new Error(`--${name} must be an integer between ${min} and ${max}, got ${value}`);
  }
  return parsed;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      data: { type: 'string' },
      'max-requests': { type: 'string' },
      'window-ms': { type: 'string' },
    },
  });
  const port = integer('port', values.port, 0, 65_535);
  const maxRequests = integer('max-requests', values['max-requests'], 1);
  const windowMs = integer('window-ms', values['window-ms'], 1);
  if (windowMs !== undefined && maxRequests === undefined) throw new Error('--window-ms needs --max-requests');
  const log = (line: string) => console.log(`[dataverse] ${line}`);
  const dataverse = await startDevDataverse({
    port,
    host: values.host,
    dataFile: values.data,
    rateLimit: maxRequests === undefined ? undefined : { maxRequests, windowMs: windowMs ?? 300_000 },
    log,
  });
  console.log(dataverse.apiUrl);

  closeOnSignals(() => dataverse.close(), log);
}

runMain(main);
