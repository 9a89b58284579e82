import type { Target } from '../../config/schema.ts';
import type { GitLabClient, PipelineSummary } from '../../gitlab/client.ts';
import type { Enqueuer } from '../../queue/enqueue.ts';
import type { DeployJobData } from '../../queue/jobs.ts';
import { refMatches } from '../../targets/match.ts';
import type { TargetState } from '../../targets/state.ts';
import {
  AlreadyRunningError,
  NoSuccessfulPipelineError,
  NotNewerError,
  RefNotDeployableError,
} from './refusals.ts';
import type { DeployRequest } from './schemas.ts';

export interface ManualDeployDeps {
  gitlab: Pick<GitLabClient, 'latestSuccessfulPipeline' | 'successfulPipelineForSha'>;
  enqueuer: Pick<Enqueuer, 'deploy'>;
  state: Pick<TargetState, 'current'>;
}

export interface Requester {
  kind: DeployJobData['trigger']['kind'];
  /** the API token's name */
  user: string;
  correlationId: string;
}

export interface QueuedDeploy {
  jobId: string;
  sha: string;
  ref: string;
  pipelineId: number;
  force: boolean;
}

/**
 * A deploy asked for by an operator, under the webhook's rules: only a commit whose pipeline
 * succeeded, only from the target's refs, never older than what was accepted and never the
 * sha that runs unless forced; the queue's per-target lock keeps it one at a time.
 * Throws a RefusedError subclass, or a GitLab error when GitLab cannot answer.
 */
export async function requestDeploy(
  deps: ManualDeployDeps,
  target: Target,
  req: DeployRequest,
  who: Requester,
): Promise<QueuedDeploy> {
  const project = target.gitlab.project;
  const force = req.force ?? false;
  let pipeline: PipelineSummary | null;
  if (req.ref !== undefined) {
    if (!refMatches(target.gitlab.refs, req.ref))
      throw new RefNotDeployableError(target.name, req.ref, target.gitlab.refs, 'asked for ref');
    pipeline = await deps.gitlab.latestSuccessfulPipeline(project, req.ref);
    if (!pipeline) throw new NoSuccessfulPipelineError(project, `ref ${req.ref}`);
  } else {
    const sha = req.sha ?? '';
    pipeline = await deps.gitlab.successfulPipelineForSha(project, sha);
    if (!pipeline) throw new NoSuccessfulPipelineError(project, `sha ${sha}`);
    if (!refMatches(target.gitlab.refs, pipeline.ref)) {
      throw new RefNotDeployableError(
        target.name,
        pipeline.ref,
        target.gitlab.refs,
        `sha ${sha}'s pipeline ${pipeline.id} ran on ref`,
      );
    }
  }

  if (!force) {
    const current = await deps.state.current(target.name);
    if (current?.sha === pipeline.sha)
      throw new AlreadyRunningError(target.name, current.sha, current.jobId, current.deployedAt);
  }
  const queued = await deps.enqueuer.deploy({
    target: target.name,
    sha: pipeline.sha,
    ref: pipeline.ref,
    tag: pipeline.tag,
    pipelineId: pipeline.id,
    trigger: {
      kind: who.kind,
      user: who.user,
      ...(pipeline.source ? { pipelineSource: pipeline.source } : {}),
    },
    force,
    correlationId: who.correlationId,
    requestedAt: new Date().toISOString(),
  });
  if (queued.result === 'superseded') throw new NotNewerError(queued.reason);
  if (queued.result === 'duplicate') throw new NotNewerError(queued.reason, queued.jobId);
  return {
    jobId: queued.jobId,
    sha: pipeline.sha,
    ref: pipeline.ref,
    pipelineId: pipeline.id,
    force,
  };
}
