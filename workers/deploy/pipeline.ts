import type { Job } from 'bullmq';
import type { Target } from '../../src/config/schema.ts';
import { logger } from '../../src/log.ts';
import type { DeployJobData, RollbackJobData } from '../../src/queue/jobs.ts';
import type {
  HistoryEntry,
  Outcome,
  Release as StoredRelease,
  TargetState,
} from '../../src/targets/state.ts';
import { forBullMQ, ReleaseUnavailableError, RolloutFailedError, retryable } from './errors.ts';
import type { StepsData } from './job-steps.ts';
import type { JobResult, RunContext } from './processor.ts';
import {
  cause,
  clean,
  deleteFailed,
  patch,
  promote,
  reportEnd,
  reportStart,
  repositories,
  resolve,
  watch,
  type Patched,
  type Release,
  type Reported,
  type StepDeps,
  type Watched,
} from './steps.ts';

export interface PipelineDeps extends StepDeps {
  state: TargetState;
}

/**
 * A deploy, step by step (DESIGN.md): resolve → report → patch → watch → promote → clean →
 * finish; a rollout that fails goes rollback → report-failed → delete-failed instead. Every
 * step's result is saved on the job, so a retried or resumed job continues where it was.
 */
export function makeDeployPipeline(deps: PipelineDeps) {
  return async (ctx: RunContext<DeployJobData>): Promise<JobResult> => {
    const { data, target, steps, signal } = ctx;
    const startedAt = new Date().toISOString();
    const by = data.trigger.user ?? data.trigger.kind;
    const jobUrl = jobLink(deps, ctx.job);
    let live = false;
    let reported: Reported = { deploymentId: null };
    try {
      const release = await steps.run('resolve', () =>
        resolve(deps, target, data.sha, data.ref, signal, target.images.waitForImage),
      );
      reported = await steps.run('report', () => reportStart(deps, target, { ...data, jobUrl }));
      const patched = await steps.run('patch', () =>
        patch(
          deps,
          target,
          release.images,
          cause('deploy', {
            sha: data.sha,
            pipelineId: data.pipelineId,
            user: by,
            source: data.trigger.pipelineSource,
          }),
        ),
      );
      const rollout = await steps.run('watch', () => watch(deps, target, steps, 'watch', signal));
      if (rollout.outcome !== 'complete') {
        return await failurePath(deps, ctx, {
          release,
          patched,
          rollout,
          reported,
          startedAt,
          by,
          jobUrl,
        });
      }
      live = true;
      const promoted = await steps.run('promote', () => promote(deps, target, release.tag));
      await steps.run('clean', async () =>
        clean(deps, target, promoted, await previousReleases(deps.state, target.name, data.sha)),
      );
      await steps.run('finish', () =>
        reportEnd(
          deps,
          target,
          { ...data, deploymentId: reported.deploymentId, jobUrl },
          'success',
          `deployed to ${target.environment.name}`,
        ),
      );
      await deps.state.recordRelease(
        target.name,
        storedRelease(ctx.job, target, release, data.pipelineId, by),
        history(ctx, { kind: 'deploy', outcome: 'success', startedAt, by }),
      );
      logger.info('deploy succeeded', { sha: data.sha, steps: steps.list() });
      return { outcome: 'success', sha: data.sha };
    } catch (err) {
      await finalFailure(deps, ctx, err, { live, reported, startedAt, by, jobUrl });
      throw forBullMQ(err);
    }
  };
}

async function failurePath(
  deps: PipelineDeps,
  ctx: RunContext<DeployJobData>,
  s: {
    release: Release;
    patched: Patched;
    rollout: Watched;
    reported: Reported;
    startedAt: string;
    by: string;
    jobUrl?: string;
  },
): Promise<never> {
  const { data, target, steps, signal } = ctx;
  const why = `rollout ${s.rollout.outcome}${s.rollout.reason ? ` (${s.rollout.reason})` : ''}: ${s.rollout.message}`;
  let outcome: Outcome = 'failed';
  let rolledBack: Watched | null = null;
  // Not `patched.changed`: a job resumed after a crash re-patches nothing (changed: false) yet
  // still has the images to restore, recorded on the Deployment by the first patch.
  const replaced = Object.entries(s.patched.previousImages).some(
    ([c, img]) => s.release.images[c] !== img,
  );
  if (target.rollout.rollbackOnFailure && replaced) {
    rolledBack = await steps.run('rollback', async () => {
      const r = await deps.kube.rollback(
        target.kubernetes,
        s.patched.previousImages,
        cause('rollback', { sha: data.sha, pipelineId: data.pipelineId, user: 'rollhook' }),
        {
          timeoutMs: target.rollout.timeout,
          signal,
          onProgress: (p) =>
            void steps
              .progress({
                step: 'rollback',
                message: p.message,
                desired: p.desired,
                updated: p.updated,
                ready: p.ready,
                available: p.available,
              })
              .catch(() => undefined),
        },
      );
      return {
        outcome: r.rollout.outcome,
        reason: r.rollout.reason,
        message: r.rollout.message,
      } satisfies Watched;
    });
    if (rolledBack.outcome === 'complete') outcome = 'rolled-back';
  }
  await steps.run('report-failed', () =>
    reportEnd(
      deps,
      target,
      { ...data, deploymentId: s.reported.deploymentId, jobUrl: s.jobUrl },
      'failed',
      why.slice(0, 200),
    ),
  );
  // The failed image goes only once nothing runs it any more.
  if (outcome === 'rolled-back')
    await steps.run('delete-failed', () => deleteFailed(deps, target, s.release.tag));
  const message = `step watch failed: ${why}; ${
    rolledBack
      ? `rolled back to ${Object.values(s.patched.previousImages).join(', ')}: rollback ${rolledBack.outcome}`
      : 'not rolled back'
  }; prod not moved`;
  await deps.state.recordOutcome(
    target.name,
    history(ctx, { kind: 'deploy', outcome, reason: message, startedAt: s.startedAt, by: s.by }),
  );
  logger.warn('deploy failed', { reason: message, steps: steps.list() });
  throw new RolloutFailedError(message, s.rollout.outcome);
}

/** A job that will not run again (unrecoverable, or out of attempts): history and GitLab learn it. */
async function finalFailure(
  deps: PipelineDeps,
  ctx: RunContext<DeployJobData | RollbackJobData>,
  err: unknown,
  s: { live: boolean; reported: Reported; startedAt: string; by: string; jobUrl?: string },
): Promise<void> {
  if (err instanceof RolloutFailedError) return; // the failure path recorded it
  const lastAttempt = ctx.job.attemptsMade + 1 >= (ctx.job.opts.attempts ?? 1);
  if (retryable(err) && !lastAttempt) return;
  const message = err instanceof Error ? err.message : String(err);
  const { data, target, steps } = ctx;
  const sha = 'sha' in data ? data.sha : (data.toSha ?? '');
  const kind = 'sha' in data ? 'deploy' : 'rollback';
  await deps.state
    .recordOutcome(
      target.name,
      history(ctx, { kind, outcome: 'failed', reason: message, startedAt: s.startedAt, by: s.by }),
    )
    .catch(() => undefined);
  if (sha && 'ref' in data) {
    // A rollout that went live reports success to GitLab: that is what runs.
    await reportEnd(
      deps,
      target,
      { ...data, deploymentId: s.reported.deploymentId, jobUrl: s.jobUrl },
      s.live ? 'success' : 'failed',
      message.slice(0, 200),
    ).catch(() => undefined);
  }
  logger.error(`${kind} failed`, { reason: message, steps: steps.list() });
}

/**
 * A rollback: back to the previous release (or a named one) by the same steps as a deploy,
 * without the ordering guard and without deleting anything.
 */
export function makeRollbackPipeline(deps: PipelineDeps) {
  return async (ctx: RunContext<RollbackJobData>): Promise<JobResult> => {
    const { data, target, steps, signal } = ctx;
    const startedAt = new Date().toISOString();
    const by = data.trigger.user ?? data.trigger.kind;
    const jobUrl = jobLink(deps, ctx.job);
    let reported: Reported = { deploymentId: null };
    try {
      const chosen = await steps.run('choose', () =>
        chooseRelease(deps.state, target.name, data.toSha),
      );
      const release = await steps.run('resolve', () =>
        resolve(deps, target, chosen.sha, chosen.ref, signal, 0).catch((e: unknown) => {
          throw new ReleaseUnavailableError(
            `cannot roll back ${target.name} to ${chosen.sha}: ${e instanceof Error ? e.message : String(e)}`,
          );
        }),
      );
      const r = { sha: chosen.sha, ref: chosen.ref, tag: false, pipelineId: chosen.pipelineId };
      reported = await steps.run('report', () => reportStart(deps, target, { ...r, jobUrl }));
      await steps.run('patch', () =>
        patch(
          deps,
          target,
          release.images,
          cause('rollback', { sha: chosen.sha, pipelineId: chosen.pipelineId, user: by }),
        ),
      );
      const rollout = await steps.run('watch', () => watch(deps, target, steps, 'watch', signal));
      if (rollout.outcome !== 'complete') {
        const why = `rollback rollout ${rollout.outcome}${rollout.reason ? ` (${rollout.reason})` : ''}: ${rollout.message}`;
        await steps.run('report-failed', () =>
          reportEnd(
            deps,
            target,
            { ...r, deploymentId: reported.deploymentId, jobUrl },
            'failed',
            why.slice(0, 200),
          ),
        );
        await deps.state.recordOutcome(
          target.name,
          history(ctx, {
            kind: 'rollback',
            outcome: 'failed',
            reason: why,
            startedAt,
            by,
            sha: chosen.sha,
          }),
        );
        throw new RolloutFailedError(`step watch failed: ${why}`, rollout.outcome);
      }
      await steps.run('promote', () => promote(deps, target, release.tag));
      await steps.run('finish', () =>
        reportEnd(
          deps,
          target,
          { ...r, deploymentId: reported.deploymentId, jobUrl },
          'success',
          `rolled back to ${chosen.sha.slice(0, 12)}`,
        ),
      );
      await deps.state.recordRelease(
        target.name,
        storedRelease(ctx.job, target, release, chosen.pipelineId, by),
        history(ctx, { kind: 'rollback', outcome: 'success', startedAt, by, sha: chosen.sha }),
      );
      return { outcome: 'success', sha: chosen.sha };
    } catch (err) {
      await finalFailure(deps, ctx, err, { live: false, reported, startedAt, by, jobUrl });
      throw forBullMQ(err);
    }
  };
}

/** Releases deployed before this one, newest first (this one is recorded after clean). */
async function previousReleases(
  state: TargetState,
  target: string,
  sha: string,
): Promise<StoredRelease[]> {
  return (await state.releases(target)).filter((r) => r.sha !== sha);
}

/** The release to return to: the named sha, or the newest release that is not the current one. */
export async function chooseRelease(
  state: TargetState,
  target: string,
  toSha?: string,
): Promise<StoredRelease> {
  const [current, releases] = await Promise.all([state.current(target), state.releases(target)]);
  const found = toSha
    ? releases.find((r) => r.sha === toSha || (toSha.length >= 7 && r.sha.startsWith(toSha)))
    : releases.find((r) => r.sha !== current?.sha);
  if (!found) {
    throw new ReleaseUnavailableError(
      toSha
        ? `${target} has no recorded release ${toSha}`
        : `${target} has no earlier release to roll back to`,
    );
  }
  return found;
}

/** What the target runs after this job, as kept in its state. */
function storedRelease(
  job: Job,
  target: Target,
  release: Release,
  pipelineId: number,
  by: string,
): StoredRelease {
  return {
    sha: release.sha,
    ref: release.ref,
    pipelineId,
    digest: release.digests[repositories(target)[0] ?? ''],
    digests: release.digests,
    images: release.images,
    deployedAt: new Date().toISOString(),
    jobId: job.id ?? '',
    by,
  };
}

function history<D extends StepsData & { target: string }>(
  ctx: RunContext<D>,
  h: {
    kind: 'deploy' | 'rollback';
    outcome: Outcome;
    reason?: string;
    startedAt: string;
    by: string;
    sha?: string;
  },
): HistoryEntry {
  const d = ctx.data as D & { sha?: string; ref?: string; pipelineId?: number; toSha?: string };
  return {
    jobId: ctx.job.id ?? '',
    kind: h.kind,
    sha: h.sha ?? d.sha ?? d.toSha ?? '',
    ref: d.ref ?? '',
    pipelineId: d.pipelineId ?? 0,
    outcome: h.outcome,
    reason: h.reason,
    by: h.by,
    startedAt: h.startedAt,
    finishedAt: new Date().toISOString(),
    steps: ctx.steps.list(),
  };
}

function jobLink(deps: PipelineDeps, job: Job): string | undefined {
  const base = deps.config.server.publicUrl;
  return base
    ? `${base.replace(/\/$/, '')}/api/v1/jobs/${encodeURIComponent(job.id ?? '')}`
    : undefined;
}
