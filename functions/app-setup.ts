import { app } from '@azure/functions';

import { services } from '../shared/app';

app.hook.appStart(async () => {
  // Settings are parsed here, so a missing or invalid one stops the app with a list of every problem instead
  // of failing the first request.
  const started = services();
  // Tracing (when configured) is registered before the first invocation, so that its spans are recorded.
  await started.tracing;
  // The tables are created now too; if storage is not reachable yet, the first invocation that needs it tries
  // again.
  await started.context().catch((error: unknown) => started.log(`Storage not ready at start-up: ${String(error)}`));
});

// Stream HTTP bodies instead of buffering them: a CSV export of every matching operation is written as it is
// read, so memory stays flat however large the export.
app.setup({ enableHttpStream: true });
