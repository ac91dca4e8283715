import { app } from '@azure/functions';

import { services } from '../shared/app';
import { runJob } from '../shared/jobs';

// Daily at 03:00 UTC, when channels are quiet.
app.timer('audit-retention-timer', {
  schedule: '0 0 3 * * *',
  handler: async () => {
    await runJob(await services().context(), 'audit-retention');
  },
});
