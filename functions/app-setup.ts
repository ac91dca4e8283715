import { app } from '@azure/functions';

import { services } from '../shared/app';
import { settings } from '../shared/config';

// Parse the settings when the app starts, so a missing setting stops the app with a list of every problem
// instead of failing the first request. The tables are created then too; if storage is not reachable yet,
// the first invocation tries again.
app.hook.appStart(async () => {
  settings();
  await services().catch((error: unknown) => console.warn(`Storage not ready at start-up: ${String(error)}`));
});

// Stream HTTP bodies instead of buffering them: a CSV export of every matching operation is written as it is
// read, so memory stays flat however large the export.
app.setup({ enableHttpStream: true });
