import type { Job } from 'bullmq';
import { logger } from '../../src/log.ts';
import type { SavedStep } from '../../src/queue/jobs.ts';
import type { StepRecord } from '../../src/targets/state.ts';

export interface StepsData {
  steps?: Record<string, SavedStep>;
}

export interface StepProgress {
  step: string;
  message?: string;
  [k: string]: unknown;
}

/** Thrown by a step to say "nothing to do", with why; recorded as skipped, not failed. */
export class StepSkipped extends Error {
  override readonly name = 'StepSkipped';
  readonly result: unknown;
  constructor(reason: string, result?: unknown) {
    super(reason);
    this.result = result;
  }
}

/** A step failed: carries the step's name so the job's error says where. */
export class StepFailed extends Error {
  override readonly name = 'StepFailed';
  readonly step: string;
  constructor(step: string, cause: unknown) {
    super(`step ${step} failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.step = step;
  }
}

/** Told of every step this attempt ran (not of steps reused from an earlier attempt): metrics. */
export type StepObserver = (step: string, status: SavedStep['status'], ms: number) => void;

/**
 * Runs a job as a chain of named, timed steps whose results are saved on the job, so a
 * job that is retried or picked up after a worker crash resumes after its last finished
 * step and never repeats one (no second promotion, no second delete).
 */
export class JobSteps<D extends StepsData> {
  private readonly job: Job<D>;
  private readonly records: StepRecord[] = [];
  private readonly observe: StepObserver | undefined;

  constructor(job: Job<D>, observe?: StepObserver) {
    this.job = job;
    this.observe = observe;
  }

  saved(name: string): SavedStep | undefined {
    return this.job.data.steps?.[name];
  }

  /** Runs fn unless the step already finished in an earlier attempt; returns its result. */
  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prior = this.saved(name);
    if (prior && prior.status !== 'failed') {
      this.records.push({ name, ms: prior.ms, status: prior.status, detail: prior.detail });
      return prior.result as T;
    }
    await this.progress({ step: name });
    const started = performance.now();
    try {
      const result = await fn();
      await this.save(name, {
        status: 'done',
        ms: performance.now() - started,
        at: new Date().toISOString(),
        result,
      });
      return result;
    } catch (err) {
      const ms = performance.now() - started;
      if (err instanceof StepSkipped) {
        await this.save(name, {
          status: 'skipped',
          ms,
          at: new Date().toISOString(),
          detail: err.message,
          result: err.result,
        });
        return err.result as T;
      }
      await this.save(name, {
        status: 'failed',
        ms,
        at: new Date().toISOString(),
        detail: err instanceof Error ? err.message : String(err),
      });
      throw err instanceof StepFailed ? err : new StepFailed(name, err);
    }
  }

  async progress(p: StepProgress): Promise<void> {
    await this.job.updateProgress(p);
  }

  /** The steps this attempt ran or reused, in order, for history. */
  list(): StepRecord[] {
    return [...this.records];
  }

  private async save(name: string, s: SavedStep): Promise<void> {
    s.ms = Math.round(s.ms);
    this.records.push({ name, ms: s.ms, status: s.status, detail: s.detail });
    this.observe?.(name, s.status, s.ms);
    logger.info(`step ${name} ${s.status}`, { step: name, ms: s.ms, detail: s.detail });
    const steps = { ...this.job.data.steps, [name]: s };
    await this.job.updateData({ ...this.job.data, steps });
  }
}
