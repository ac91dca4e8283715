import { app } from '@azure/functions';

import { services } from '../shared/app';
import { DomainError } from '../shared/domain/errors';
import { runJob } from '../shared/jobs';

app.timer('alerts-timer', {
  schedule: '%ALERTS_SCHEDULE%',
  handler: async () => {
    const ctx = await services().context();
    try {
      await runJob(ctx, 'alerts');
    } catch (error) {
      // A manual run (or another instance's timer) holds the lease: that run evaluates the rules this tick would.
      if (error instanceof DomainError && error.code === 'JOB_RUNNING') return ctx.log(error.message);
      throw error;
    }
  },
});
