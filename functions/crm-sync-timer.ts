import { app } from '@azure/functions';

import { services } from '../shared/app';
import { DomainError } from '../shared/domain/errors';
import { runJob } from '../shared/jobs';

app.timer('crm-sync-timer', {
  schedule: '%CRM_SYNC_SCHEDULE%',
  handler: async () => {
    const ctx = await services().context();
    if (!ctx.coupling) return; // coupling is off: no Dataverse configured
    try {
      await runJob(ctx, 'crm-sync');
    } catch (error) {
      // A manual run (or another instance's timer) holds the lease: this tick has nothing to add.
      if (error instanceof DomainError && error.code === 'JOB_RUNNING') return ctx.log(error.message);
      throw error;
    }
  },
});
