import type { Config, Target } from '../../src/config/schema.ts';
import type { GitLabClient } from '../../src/gitlab/client.ts';
import {
  changeCause,
  imageRefsFor,
  type KubeAdapter,
  type RolloutResult,
} from '../../src/kube/index.ts';
import { logger } from '../../src/log.ts';
import { sleep } from '../../src/retry.ts';
import type {
  DeleteSupersededResult,
  DeleteTagResult,
  ImageRegistry,
  PromoteResult,
} from '../../src/registry/index.ts';
import { imageTag } from '../../src/targets/match.ts';
import type { Release as StoredRelease } from '../../src/targets/state.ts';
import { ImageNotFoundError } from './errors.ts';
import { StepSkipped, type JobSteps } from './job-steps.ts';

/**
 * The steps of a deploy, each a small idempotent function: running one twice does no harm,
 * and its result is what the next steps (or a resumed job) need.
 */

export interface StepDeps {
  config: Config;
  registry: ImageRegistry;
  kube: KubeAdapter;
  gitlab: GitLabClient;
  /** how often `resolve` looks again for an image that is not pushed yet */
  imagePollMs?: number;
}

export interface Release {
  sha: string;
  ref: string;
  tag: string;
  /** repository -> digest of `tag` */
  digests: Record<string, string>;
  /** container -> image reference to set */
  images: Record<string, string>;
}

export function repositories(target: Target): string[] {
  return [...new Set(Object.values(target.kubernetes.containers))];
}

export function releaseTag(target: Target, sha: string): string {
  return imageTag(target.images.tag, { sha });
}

/** resolve: the release's tag must exist in every repository; its digest is recorded. */
export async function resolve(
  deps: StepDeps,
  target: Target,
  sha: string,
  ref: string,
  signal: AbortSignal,
  waitMs: number,
): Promise<Release> {
  const tag = releaseTag(target, sha);
  const digests: Record<string, string> = {};
  const started = Date.now();
  for (const repo of repositories(target)) {
    for (;;) {
      const digest = await deps.registry.digestOf(repo, tag);
      if (digest) {
        digests[repo] = digest;
        break;
      }
      if (Date.now() - started >= waitMs)
        throw new ImageNotFoundError(`${repo}:${tag}`, Date.now() - started);
      logger.info('image not pushed yet; waiting', { image: `${repo}:${tag}` });
      await sleep(deps.imagePollMs ?? 3000, signal);
    }
  }
  return { sha, ref, tag, digests, images: imageRefsFor(target.kubernetes, tag, digests) };
}

export interface Reported {
  deploymentId: number | null;
  error?: string;
}

/** report: a GitLab deployment `running` for the target's environment. Best effort, never fatal. */
export async function reportStart(
  deps: StepDeps,
  target: Target,
  r: { sha: string; ref: string; tag: boolean; pipelineId?: number; jobUrl?: string },
): Promise<Reported> {
  const project = target.gitlab.project;
  try {
    await deps.gitlab.ensureEnvironment(project, {
      name: target.environment.name,
      tier: target.environment.tier,
      externalUrl: target.environment.url,
    });
    const d = await deps.gitlab.createDeployment(project, {
      environment: target.environment.name,
      sha: r.sha,
      ref: r.ref,
      tag: r.tag,
      status: 'running',
    });
    if (target.commitStatus) {
      await deps.gitlab.setCommitStatus(project, r.sha, 'running', {
        name: `rollhook/${target.name}`,
        description: `deploying to ${target.environment.name}`,
        targetUrl: r.jobUrl,
        pipelineId: r.pipelineId,
        ref: r.ref,
      });
    }
    return { deploymentId: d.id };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    logger.warn('could not report the deployment to GitLab; the rollout goes on', {
      error: message,
    });
    throw new StepSkipped(`GitLab reporting failed: ${message}`, {
      deploymentId: null,
      error: message,
    } satisfies Reported);
  }
}

/** finish/report-failed: the GitLab deployment's final status and the optional commit status. Best effort. */
export async function reportEnd(
  deps: StepDeps,
  target: Target,
  r: {
    sha: string;
    ref: string;
    tag: boolean;
    pipelineId?: number;
    deploymentId: number | null;
    jobUrl?: string;
  },
  status: 'success' | 'failed',
  description: string,
): Promise<{ deployment: string; commitStatus: string }> {
  const project = target.gitlab.project;
  const out = { deployment: 'not reported', commitStatus: 'not configured' };
  const problems: string[] = [];
  try {
    let id = r.deploymentId;
    // The start report failed: GitLab may be back, so create the deployment now.
    id ??= (
      await deps.gitlab.createDeployment(project, {
        environment: target.environment.name,
        sha: r.sha,
        ref: r.ref,
        tag: r.tag,
        status: 'running',
      })
    ).id;
    await deps.gitlab.updateDeployment(project, id, status);
    out.deployment = `deployment ${id} ${status}`;
  } catch (err) {
    problems.push(`deployment: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (target.commitStatus) {
    try {
      await deps.gitlab.setCommitStatus(project, r.sha, status, {
        name: `rollhook/${target.name}`,
        description,
        targetUrl: r.jobUrl,
        pipelineId: r.pipelineId,
        ref: r.ref,
      });
      out.commitStatus = status;
    } catch (err) {
      problems.push(`commit status: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (problems.length > 0) {
    logger.warn('could not report the outcome to GitLab', { problems });
    throw new StepSkipped(`GitLab reporting failed: ${problems.join('; ')}`, out);
  }
  return out;
}

export interface Patched {
  previousImages: Record<string, string>;
  changed: boolean;
}

/** patch: the Deployment's containers to the release's images, with the change-cause. */
export async function patch(
  deps: StepDeps,
  target: Target,
  images: Record<string, string>,
  cause: string,
): Promise<Patched> {
  const r = await deps.kube.setImages(target.kubernetes, images, cause);
  return { previousImages: r.previousImages, changed: r.changed };
}

export type Watched = Pick<RolloutResult, 'outcome' | 'reason' | 'message'>;

/** watch: the rollout, by `kubectl rollout status` rules, with progress on the job. */
export async function watch(
  deps: StepDeps,
  target: Target,
  steps: JobSteps<object>,
  step: string,
  signal: AbortSignal,
): Promise<Watched> {
  const r = await deps.kube.waitForRollout(target.kubernetes, {
    timeoutMs: target.rollout.timeout,
    signal,
    onProgress: (p) => {
      void steps
        .progress({
          step,
          message: p.message,
          desired: p.desired,
          updated: p.updated,
          ready: p.ready,
          available: p.available,
          hints: p.hints,
        })
        .catch(() => undefined);
    },
  });
  return { outcome: r.outcome, reason: r.reason, message: r.message };
}

/** promote: `prod` -> the release's manifest in every repository (a manifest copy, no layers). */
export async function promote(
  deps: StepDeps,
  target: Target,
  tag: string,
): Promise<Record<string, PromoteResult>> {
  const out: Record<string, PromoteResult> = {};
  for (const repo of repositories(target))
    out[repo] = await deps.registry.promote(repo, tag, target.images.promoteTo);
  return out;
}

/** What clean did for one repository: the superseded digest, and a release that left the window. */
export interface Cleaned {
  superseded?: DeleteSupersededResult;
  /** the release that fell out of the `keepReleases` window, deleted through the same rules */
  expired?: DeleteSupersededResult & { sha: string };
}

/**
 * clean: the digest `prod` pointed at before is deleted unless a safety rule keeps it (same
 * digest, protected tag, a live Deployment of a target using the repository runs it, an index
 * holds it) or retention does: `keepReleases` keeps the N releases rollhook deployed before
 * this one, by deploy history (`previous`, newest first) rather than image age, so an image
 * pushed but never released is never what a rollback needs. The release that falls out of the
 * window is deleted too.
 */
export async function clean(
  deps: StepDeps,
  target: Target,
  promoted: Record<string, PromoteResult>,
  previous: readonly StoredRelease[],
): Promise<Record<string, Cleaned>> {
  if (!target.images.deleteSuperseded) throw new StepSkipped('images.deleteSuperseded is off');
  const keep = target.images.keepReleases;
  const kept = previous.slice(0, keep);
  const expired = keep > 0 ? previous[keep] : undefined;
  const work = Object.entries(promoted).flatMap(([repo, p]) => {
    const superseded =
      p.previousDigest && p.previousDigest !== p.newDigest ? p.previousDigest : undefined;
    const gone = expired ? digestIn(expired, repo) : undefined;
    return superseded || gone ? [{ repo, newDigest: p.newDigest, superseded, gone }] : [];
  });
  if (work.length === 0) {
    throw new StepSkipped(
      'nothing superseded: prod already pointed at the new digest or did not exist',
      {},
    );
  }
  // What runs now, after the rollout, in every target that uses one of these repositories
  // (a delete is per repository, so targets of other repositories cannot be running it).
  const repos = new Set(work.map((w) => w.repo));
  const sharing = deps.config.targets.filter((t) =>
    Object.values(t.kubernetes.containers).some((r) => repos.has(r)),
  );
  const running = await deps.kube.runningDigests(sharing.map((t) => t.kubernetes));
  const out: Record<string, Cleaned> = {};
  for (const w of work) {
    const keptDigests = new Set(
      kept.map((r) => digestIn(r, w.repo)).filter((d): d is string => Boolean(d)),
    );
    const ctx = {
      newDigest: w.newDigest,
      protectedTags: [target.images.promoteTo],
      runningDigests: running,
      keepReleases: 0,
      releaseTagPattern: target.images.tag.replaceAll('{sha}', '*'),
    };
    const result: Cleaned = {};
    if (w.superseded) {
      result.superseded = keptDigests.has(w.superseded)
        ? {
            deleted: false,
            rule: 'retention',
            reason: `${w.superseded} is one of the ${keep} releases kept for rollback (images.keepReleases)`,
          }
        : await deps.registry.deleteSuperseded(w.repo, w.superseded, ctx);
    }
    if (w.gone && expired && !keptDigests.has(w.gone) && w.gone !== w.superseded) {
      result.expired = {
        sha: expired.sha,
        ...(await deps.registry.deleteSuperseded(w.repo, w.gone, ctx)),
      };
    }
    out[w.repo] = result;
  }
  return out;
}

/** The digest a recorded release ran from a repository. */
function digestIn(r: StoredRelease, repo: string): string | undefined {
  return r.digests?.[repo];
}

/** After a failed rollout: the failed release's tag goes (only that tag; other tags on its digest stay). */
export async function deleteFailed(
  deps: StepDeps,
  target: Target,
  tag: string,
): Promise<Record<string, DeleteTagResult>> {
  if (!target.images.deleteOnFailure) throw new StepSkipped('images.deleteOnFailure is off');
  const out: Record<string, DeleteTagResult> = {};
  for (const repo of repositories(target)) out[repo] = await deps.registry.deleteTag(repo, tag);
  return out;
}

export function cause(
  action: 'deploy' | 'rollback',
  c: { sha: string; pipelineId?: number; user?: string; source?: string },
): string {
  return changeCause({ action, ...c });
}
