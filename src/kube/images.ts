import type { Target } from '../config/schema.ts';

export type KubeTarget = Target['kubernetes'];

const DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * The reference a container is set to: `repo:tag`, or `repo:tag@sha256:…` when the target pins
 * digests (the tag stays for people reading `kubectl get`, the digest is what the node pulls).
 */
export function imageRef(
  repository: string,
  tag: string,
  digest?: string,
  pinDigest = false,
): string {
  if (pinDigest) {
    if (!digest || !DIGEST.test(digest)) {
      throw new TypeError(
        `pinning ${repository}:${tag} needs its sha256 digest, got ${digest ?? 'none'}`,
      );
    }
    return `${repository}:${tag}@${digest}`;
  }
  return `${repository}:${tag}`;
}

/** The image of every configured container for one release tag; `digests` by container or repository. */
export function imageRefsFor(
  target: KubeTarget,
  tag: string,
  digests: Record<string, string> = {},
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [container, repository] of Object.entries(target.containers)) {
    out[container] = imageRef(
      repository,
      tag,
      digests[container] ?? digests[repository],
      target.pinDigest,
    );
  }
  return out;
}

/** The sha256 digest an image reference or a Pod's imageID names, if any. */
export function digestOf(ref: string): string | undefined {
  const candidate = ref.slice(ref.lastIndexOf('@') + 1);
  return DIGEST.test(candidate) ? candidate : undefined;
}

/**
 * A Pod's `imageID` as an image reference: container runtimes report `repo@sha256:…`, some with
 * a scheme such as `docker-pullable://`.
 */
export function imageIdRef(imageId: string): string {
  return imageId.replace(/^[a-z-]+:\/\//, '');
}

/** The `kubernetes.io/change-cause` text: what `kubectl rollout history` shows for a revision. */
export function changeCause(c: {
  pipelineId?: number | string;
  sha: string;
  user?: string;
  source?: string;
  action?: string;
}): string {
  const parts = [`rollhook ${c.action ?? 'deploy'}`, `sha ${c.sha.slice(0, 12)}`];
  if (c.pipelineId !== undefined) parts.push(`pipeline ${c.pipelineId}`);
  if (c.source) parts.push(`source ${c.source}`);
  if (c.user) parts.push(`by ${c.user}`);
  return parts.join(', ');
}
