import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Config } from '../src/config/schema.ts';
import { logger } from '../src/log.ts';
import { CLEANUP_CI_QUEUE, DEPLOY_QUEUE } from '../src/queue/names.ts';
import type { CleanupCiJobData } from '../src/queue/jobs.ts';
import type { makeDeployProcessor } from './deploy/processor.ts';

export interface Workers {
  /** stop taking jobs, let running ones finish until the deadline, then close */
  close(deadlineMs: number): Promise<void>;
}

export interface WorkerDeps {
  config: Config;
  connection: ConnectionOptions;
  deployProcessor: ReturnType<typeof makeDeployProcessor>;
  cleanupCiProcessor?: (job: Job<CleanupCiJobData>) => Promise<unknown>;
}

export function startWorkers(deps: WorkerDeps): Workers {
  const { config, connection } = deps;
  const common = {
    connection,
    prefix: config.redis.prefix,
    // A job whose worker died is noticed after one lock period and run again; every step
    // is idempotent and resumes from its saved result.
    lockDuration: config.worker.lockTtl,
    stalledInterval: config.worker.lockTtl,
    maxStalledCount: 3,
  };
  const deploy = new Worker(DEPLOY_QUEUE, deps.deployProcessor, {
    ...common,
    concurrency: config.worker.concurrency,
  });
  const workers: { close(): Promise<void> }[] = [deploy];
  deploy.on('failed', (job, err) => logFailed(DEPLOY_QUEUE, job, err));
  deploy.on('error', (err) => logger.error('worker error', { queue: DEPLOY_QUEUE, error: err }));
  if (deps.cleanupCiProcessor) {
    const cleanup = new Worker(CLEANUP_CI_QUEUE, deps.cleanupCiProcessor, {
      ...common,
      concurrency: 2,
    });
    cleanup.on('failed', (job, err) => logFailed(CLEANUP_CI_QUEUE, job, err));
    cleanup.on('error', (err) =>
      logger.error('worker error', { queue: CLEANUP_CI_QUEUE, error: err }),
    );
    workers.push(cleanup);
  }
  return {
    async close(deadlineMs) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'deadline'>((r) => {
        timer = setTimeout(() => r('deadline'), deadlineMs);
      });
      const graceful = Promise.all(workers.map((w) => w.close())).then(() => 'closed' as const);
      const how = await Promise.race([graceful, deadline]);
      clearTimeout(timer);
      if (how === 'deadline') {
        // BullMQ's close(true) after a graceful close() only returns the same promise, so
        // the process simply exits: its jobs' locks lapse, BullMQ sees them stalled and
        // another worker resumes them from their last saved step.
        logger.warn('shutdown deadline reached; jobs still running will resume on another worker', {
          deadlineMs,
        });
      }
    },
  };
}

function logFailed(
  queue: string,
  job: Job<{ correlationId: string }> | undefined,
  err: Error,
): void {
  logger.warn('job attempt failed', {
    queue,
    jobId: job?.id,
    attemptsMade: job?.attemptsMade,
    error: err.message,
    correlationId: job?.data.correlationId,
  });
}
