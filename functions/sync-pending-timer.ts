import { app } from '@azure/functions';

import { services } from '../shared/app';
import { runJob } from '../shared/jobs';

app.timer('sync-pending-timer', {
  schedule: '0 */1 * * * *',
  handler: async () => {
    await runJob(await services().context(), 'sync-pending-operations');
  },
});
