/** Every job by the name the API and the job log use. */
export const JOB_NAMES = ['sync-pending-operations', 'audit-retention', 'crm-sync', 'crm-match', 'alerts'] as const;
export type JobName = (typeof JOB_NAMES)[number];
