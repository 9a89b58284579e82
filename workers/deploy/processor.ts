import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Config, Target } from '../../src/config/schema.ts';
import { logger, withLogContext } from '../../src/log.ts';
import {
  deployJobSchema,
  rollbackJobSchema,
  type DeployJobData,
  type DeployJobName,
  type RollbackJobData,
} from '../../src/queue/jobs.ts';
import type { TargetLocks } from '../../src/queue/target-lock.ts';
import type { HistoryEntry, Outcome, TargetState } from '../../src/targets/state.ts';
import { JobSteps, StepSkipped, type StepsData } from './job-steps.ts';

export interface JobResult {
  outcome: Outcome;
  reason?: string;
  sha?: string;
}

export interface RunContext<D extends StepsData> {
  job: Job<D>;
  data: D;
  target: Target;
  steps: JobSteps<D>;
  /** aborted when the target lock is lost or the worker is shutting down */
  signal: AbortSignal;
}

export interface DeployProcessorDeps {
  config: Config;
  state: TargetState;
  locks: TargetLocks;
  deploy: (ctx: RunContext<DeployJobData>) => Promise<JobResult>;
  rollback: (ctx: RunContext<RollbackJobData>) => Promise<JobResult>;
  /** how long a job waits before trying a busy target's lock again */
  lockRetryMs?: number;
  observe?: (target: string, result: JobResult, ms: number) => void;
  /** each step a job runs, with its status and duration */
  observeStep?: (target: string, step: string, status: string, ms: number) => void;
}

type AnyDeployJob = Job<DeployJobData | RollbackJobData, JobResult, DeployJobName>;

/**
 * The deploy queue's processor: takes the target's lock (or waits for it, delayed), then
 * for deploys runs the guard (superseded? already running?) and the deploy steps; for
 * rollbacks, the rollback steps.
 */
export function makeDeployProcessor(deps: DeployProcessorDeps) {
  const byName = new Map(deps.config.targets.map((t) => [t.name, t]));
  return async (job: AnyDeployJob, token?: string, signal?: AbortSignal): Promise<JobResult> => {
    const raw = job.data;
    return withLogContext(
      { correlationId: raw.correlationId, jobId: job.id ?? '', target: raw.target },
      async () => {
        const target = byName.get(raw.target);
        if (!target) {
          // A job for a target removed from the config: nothing can deploy it.
          return {
            outcome: 'skipped',
            reason: `target ${raw.target} is not in the config any more`,
          };
        }
        const lock = await deps.locks.acquire(target.name, job.id ?? '');
        if (!lock) {
          const holder = await deps.locks.holder(target.name);
          await job.updateProgress({
            step: 'waiting',
            message: `waiting for ${holder ?? 'another job'} to finish on ${target.name}`,
          });
          await job.moveToDelayed(Date.now() + (deps.lockRetryMs ?? 1000), token);
          throw new DelayedError();
        }
        const started = performance.now();
        const abort = AbortSignal.any([lock.lost, ...(signal ? [signal] : [])]);
        try {
          const result =
            job.name === 'rollback'
              ? await deps.rollback(
                  context(
                    job as Job<RollbackJobData>,
                    rollbackJobSchema.parse(raw),
                    target,
                    abort,
                    deps,
                  ),
                )
              : await runDeploy(
                  job as Job<DeployJobData>,
                  deployJobSchema.parse(raw),
                  target,
                  abort,
                  deps,
                );
          deps.observe?.(target.name, result, performance.now() - started);
          return result;
        } catch (err) {
          // An attempt BullMQ will run again is not an outcome yet; count only the last one.
          const final =
            err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
          if (final) {
            deps.observe?.(
              target.name,
              { outcome: 'failed', reason: err instanceof Error ? err.message : String(err) },
              performance.now() - started,
            );
          }
          throw err;
        } finally {
          await lock
            .release()
            .catch((err: unknown) => logger.warn('could not release target lock', { error: err }));
        }
      },
    );
  };
}

function context<D extends StepsData>(
  job: Job<D>,
  data: D,
  target: Target,
  signal: AbortSignal,
  deps: DeployProcessorDeps,
): RunContext<D> {
  const observe = deps.observeStep;
  return {
    job,
    data,
    target,
    signal,
    steps: new JobSteps(
      job,
      observe && ((step, status, ms) => observe(target.name, step, status, ms)),
    ),
  };
}

async function runDeploy(
  job: Job<DeployJobData>,
  data: DeployJobData,
  target: Target,
  signal: AbortSignal,
  deps: DeployProcessorDeps,
): Promise<JobResult> {
  const ctx = context(job, data, target, signal, deps);
  const startedAt = new Date().toISOString();
  const skip = await ctx.steps.run('guard', () => guard(data, deps.state));
  if (skip) {
    const entry: HistoryEntry = {
      jobId: job.id ?? '',
      kind: 'deploy',
      sha: data.sha,
      ref: data.ref,
      pipelineId: data.pipelineId,
      outcome: skip.outcome,
      reason: skip.reason,
      by: data.trigger.user ?? data.trigger.kind,
      startedAt,
      finishedAt: new Date().toISOString(),
      steps: ctx.steps.list(),
    };
    await deps.state.recordOutcome(target.name, entry);
    logger.info(`deploy ${skip.outcome}`, { reason: skip.reason });
    return { outcome: skip.outcome, reason: skip.reason, sha: data.sha };
  }
  return deps.deploy(ctx);
}

/** Superseded by a newer pipeline, or the sha already runs: the job ends without deploying. */
async function guard(
  data: DeployJobData,
  state: TargetState,
): Promise<{ outcome: Outcome; reason: string } | null> {
  if (data.force) return null;
  const [watermark, current] = await Promise.all([
    state.watermark(data.target),
    state.current(data.target),
  ]);
  if (watermark > data.pipelineId) {
    throw new StepSkipped(`superseded: pipeline ${watermark} is newer than ${data.pipelineId}`, {
      outcome: 'superseded',
      reason: `pipeline ${watermark} is newer than pipeline ${data.pipelineId}`,
    });
  }
  if (current?.sha === data.sha) {
    throw new StepSkipped(`already running ${data.sha}`, {
      outcome: 'skipped',
      reason: `${data.target} already runs ${data.sha} (deployed by job ${current.jobId}); pass force to redeploy`,
    });
  }
  return null;
}
