import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { CLEANUP_CI_QUEUE, DEPLOY_QUEUE } from './names.ts';
import type { CleanupCiJobData, DeployJobData, DeployJobName, RollbackJobData } from './jobs.ts';

// Completed jobs are kept for two weeks: while a job is kept, re-adding its id is a
// no-op, which is the redelivery guard (the pipeline watermark covers older ones).
const KEEP: Pick<JobsOptions, 'removeOnComplete' | 'removeOnFail'> = {
  removeOnComplete: { age: 14 * 24 * 3600, count: 10_000 },
  removeOnFail: { age: 30 * 24 * 3600, count: 10_000 },
};

export const DEPLOY_JOB_OPTIONS: JobsOptions = {
  ...KEEP,
  attempts: 8,
  backoff: { type: 'exponential', delay: 2000 },
};

export const CLEANUP_JOB_OPTIONS: JobsOptions = {
  ...KEEP,
  attempts: 5,
  backoff: { type: 'exponential', delay: 5000 },
};

export interface Queues {
  deploy: Queue<DeployJobData | RollbackJobData, unknown, DeployJobName>;
  cleanupCi: Queue<CleanupCiJobData, unknown, 'cleanup-ci'>;
  close(): Promise<void>;
}

export function openQueues(connection: ConnectionOptions, prefix: string): Queues {
  const deploy = new Queue<DeployJobData | RollbackJobData, unknown, DeployJobName>(DEPLOY_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: DEPLOY_JOB_OPTIONS,
  });
  const cleanupCi = new Queue<CleanupCiJobData, unknown, 'cleanup-ci'>(CLEANUP_CI_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: CLEANUP_JOB_OPTIONS,
  });
  return {
    deploy,
    cleanupCi,
    close: async () => {
      await Promise.all([deploy.close(), cleanupCi.close()]);
    },
  };
}
