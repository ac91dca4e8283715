// `node dist/local/host/main.js [--app <dir>] [--port N] [--verbose]`: what `func start` does for this
// app, without Core Tools. Settings come from local.settings.json `Values`; real environment
// variables win, as in Core Tools.
import path from 'node:path';
import { parseArgs } from 'node:util';

import { seconds } from '../deadline';
import { localSettings } from '../settings';
import { startFunctionsHost } from './index';
import { closeLimitMs } from './shutdown';

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      app: { type: 'string', default: process.cwd() },
      port: { type: 'string' },
      verbose: { type: 'boolean', default: false },
    },
  });
  const appRoot = path.resolve(args.app);
  const port = args.port === undefined ? 7071 : Number(args.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid --port "${args.port}"`);
  const settings = localSettings(appRoot);
  if (args.verbose) settings.AzureFunctionsJobHost__logging__logLevel__default = 'Information';

  const host = await startFunctionsHost({ appRoot, port, settings });
  console.log('Press Ctrl+C to stop.');

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      console.error(`${signal} again: exiting without waiting for in-flight invocations.`);
      process.exit(1);
    }
    stopping = true;
    console.log(`${signal}: finishing in-flight invocations...`);
    setTimeout(() => {
      const waiting = host.closingSteps.join(', ') || 'no step known';
      console.error(
        `${signal}: the host has not closed after ${seconds(closeLimitMs)} (waiting for ${waiting}); exiting.`,
      );
      process.exit(1);
    }, closeLimitMs);
    host.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`Functions host failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
