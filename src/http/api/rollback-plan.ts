import type { Target } from '../../config/schema.ts';
import type { Enqueuer } from '../../queue/enqueue.ts';
import type { ImageRegistry } from '../../registry/index.ts';
import { imageTag } from '../../targets/match.ts';
import type { Release, TargetState } from '../../targets/state.ts';
import type { Requester } from './manual-deploy.ts';
import {
  NoPreviousReleaseError,
  ReleaseImageGoneError,
  ReleaseRunningError,
  UnknownReleaseError,
} from './refusals.ts';
import type { RollbackRequest } from './schemas.ts';

export interface RollbackDeps {
  state: Pick<TargetState, 'current' | 'releases'>;
  images: Pick<ImageRegistry, 'digestOf'>;
  enqueuer: Pick<Enqueuer, 'rollback'>;
}

export interface QueuedRollback {
  jobId: string;
  toSha: string;
  toRef: string;
}

/**
 * A rollback to a release rollhook deployed before: the one before what runs, or the one
 * named. Refused (409) when that release's image is gone from the registry, which happens
 * once cleanup deleted it as superseded: a job could only fail later, with the Deployment
 * stuck pulling an image that does not exist.
 */
export async function requestRollback(
  deps: RollbackDeps,
  target: Target,
  req: RollbackRequest,
  who: Requester,
): Promise<QueuedRollback> {
  const [current, releases] = await Promise.all([
    deps.state.current(target.name),
    deps.state.releases(target.name),
  ]);
  const release = pick(target.name, req.to, current, releases);
  for (const image of imagesOf(target, release)) {
    const digest = await deps.images.digestOf(image.repository, image.reference);
    if (digest === null) throw new ReleaseImageGoneError(target.name, release.sha, image.display);
  }
  const { jobId } = await deps.enqueuer.rollback({
    target: target.name,
    toSha: release.sha,
    trigger: { kind: who.kind, user: who.user },
    correlationId: who.correlationId,
    requestedAt: new Date().toISOString(),
  });
  return { jobId, toSha: release.sha, toRef: release.ref };
}

function pick(
  target: string,
  to: string | undefined,
  current: Release | null,
  releases: readonly Release[],
): Release {
  if (to === undefined) {
    const previous = releases.find((r) => r.sha !== current?.sha);
    if (!previous) throw new NoPreviousReleaseError(target, current?.sha);
    return previous;
  }
  const matching = releases.filter((r) => r.sha.startsWith(to));
  const shas = [...new Set(matching.map((r) => r.sha))];
  const [only] = matching;
  if (shas.length !== 1 || !only) throw new UnknownReleaseError(target, to, shas);
  if (current?.sha === only.sha) throw new ReleaseRunningError(target, only.sha, current.jobId);
  return only;
}

interface ImageCheck {
  repository: string;
  /** tag or digest */
  reference: string;
  display: string;
}

/**
 * What a rollback would run: the release tag in every container's repository, and any
 * digest the release pinned.
 */
export function imagesOf(target: Target, release: Release): ImageCheck[] {
  const checks = new Map<string, ImageCheck>();
  const tag = imageTag(target.images.tag, {
    sha: release.sha,
    ref: release.ref,
    pipelineId: release.pipelineId,
  });
  for (const repository of Object.values(target.kubernetes.containers)) {
    checks.set(`${repository}:${tag}`, {
      repository,
      reference: tag,
      display: `${repository}:${tag}`,
    });
  }
  for (const image of Object.values(release.images)) {
    const at = image.indexOf('@');
    if (at < 0) continue;
    const name = image.slice(0, at);
    const digest = image.slice(at + 1);
    // `host:port/path:tag` -> drop a tag after the last slash, keep a port before it
    const slash = name.lastIndexOf('/');
    const colon = name.lastIndexOf(':');
    const repository = colon > slash ? name.slice(0, colon) : name;
    checks.set(`${repository}@${digest}`, {
      repository,
      reference: digest,
      display: `${repository}@${digest}`,
    });
  }
  return [...checks.values()];
}
