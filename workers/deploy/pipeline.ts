import type { DeployJobData, RollbackJobData } from '../../src/queue/jobs.ts';
import type { TargetState } from '../../src/targets/state.ts';
import type { JobResult, RunContext } from './processor.ts';

export interface PipelineDeps {
  state: TargetState;
}

/** Placeholder until the deploy steps land: records that the job ran and what it would deploy. */
export function makeDeployPipeline(deps: PipelineDeps) {
  return async (ctx: RunContext<DeployJobData>): Promise<JobResult> => {
    const startedAt = new Date().toISOString();
    await ctx.steps.run('record', async () => ({ sha: ctx.data.sha }));
    const by = ctx.data.trigger.user ?? ctx.data.trigger.kind;
    await deps.state.recordRelease(
      ctx.target.name,
      {
        sha: ctx.data.sha,
        ref: ctx.data.ref,
        pipelineId: ctx.data.pipelineId,
        images: {},
        deployedAt: new Date().toISOString(),
        jobId: ctx.job.id ?? '',
        by,
      },
      {
        jobId: ctx.job.id ?? '',
        kind: 'deploy',
        sha: ctx.data.sha,
        ref: ctx.data.ref,
        pipelineId: ctx.data.pipelineId,
        outcome: 'success',
        by,
        startedAt,
        finishedAt: new Date().toISOString(),
        steps: ctx.steps.list(),
      },
    );
    return { outcome: 'success', sha: ctx.data.sha };
  };
}

export function makeRollbackPipeline() {
  return async (ctx: RunContext<RollbackJobData>): Promise<JobResult> => ({ outcome: 'skipped', reason: `rollback of ${ctx.target.name} is not built yet` });
}
