import type { TargetState } from '../targets/state.ts';
import { cleanupCiJobId, deployJobId, forcedDeployJobId, rollbackJobId } from './ids.ts';
import type { CleanupCiJobData, DeployJobData, RollbackJobData } from './jobs.ts';
import type { Queues } from './queues.ts';

export type EnqueueResult =
  | { result: 'queued'; jobId: string }
  | { result: 'duplicate'; jobId: string; reason: string }
  | { result: 'superseded'; reason: string };

/**
 * Puts deploys on the queue exactly once and newest first: ids derive from target and
 * pipeline, and a pipeline older than the newest one accepted for the target is refused.
 */
export class Enqueuer {
  private readonly queues: Queues;
  private readonly state: TargetState;

  constructor(queues: Queues, state: TargetState) {
    this.queues = queues;
    this.state = state;
  }

  async deploy(data: DeployJobData): Promise<EnqueueResult> {
    if (!data.force) {
      const watermark = await this.state.watermark(data.target);
      if (data.pipelineId < watermark) {
        return {
          result: 'superseded',
          reason: `pipeline ${data.pipelineId} is older than pipeline ${watermark}, already queued or deployed for ${data.target}`,
        };
      }
      const jobId = deployJobId(data.target, data.pipelineId);
      if (await this.queues.deploy.getJob(jobId)) {
        return {
          result: 'duplicate',
          jobId,
          reason: `pipeline ${data.pipelineId} already has job ${jobId}`,
        };
      }
      if (data.pipelineId === watermark) {
        return {
          result: 'duplicate',
          jobId,
          reason: `pipeline ${data.pipelineId} was already accepted for ${data.target}`,
        };
      }
      // Job first, watermark second: a crash in between leaves a job and a lagging
      // watermark (the worker's guard still orders it), never a watermark without a job.
      await this.queues.deploy.add('deploy', data, { jobId });
      await this.state.raiseWatermark(data.target, data.pipelineId);
      return { result: 'queued', jobId };
    }
    const jobId = forcedDeployJobId(data.target, data.pipelineId);
    await this.queues.deploy.add('deploy', data, { jobId });
    await this.state.raiseWatermark(data.target, data.pipelineId);
    return { result: 'queued', jobId };
  }

  async rollback(data: RollbackJobData): Promise<{ jobId: string }> {
    const jobId = rollbackJobId(data.target);
    await this.queues.deploy.add('rollback', data, { jobId, attempts: 3 });
    return { jobId };
  }

  async cleanupCi(data: CleanupCiJobData): Promise<EnqueueResult> {
    const jobId = cleanupCiJobId(data.target, data.pipelineId);
    if (await this.queues.cleanupCi.getJob(jobId)) {
      return {
        result: 'duplicate',
        jobId,
        reason: `pipeline ${data.pipelineId} already has cleanup job ${jobId}`,
      };
    }
    await this.queues.cleanupCi.add('cleanup-ci', data, { jobId });
    return { result: 'queued', jobId };
  }
}
