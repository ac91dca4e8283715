import { app } from '@azure/functions';

import { services } from '../shared/app';

// Parse the settings when the app starts, so a missing setting stops the app with a list of every problem
// instead of failing the first request.
app.hook.appStart(() => {
  services();
});

// Stream HTTP bodies instead of buffering them: a CSV export of every matching operation is written as it is
// read, so memory stays flat however large the export.
app.setup({ enableHttpStream: true });
