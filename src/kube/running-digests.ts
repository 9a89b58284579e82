import { logger } from '../log.ts';
import { apiRequest } from './api-request.ts';
import { podsPath, type KubeCallContext } from './context.ts';
import { KubeNotFoundError } from './errors.ts';
import { digestOf, imageIdRef, type KubeTarget } from './images.ts';
import { withRetry } from './retry.ts';
import { readDeployment } from './read-deployment.ts';
import { listView, podView, selectorString, type DeploymentView } from './views.ts';

function add(out: Set<string>, ref: string | null | undefined): void {
  if (!ref) return;
  out.add(ref);
  const digest = digestOf(ref);
  if (digest) out.add(digest);
}

/**
 * Every image reference and sha256 digest one target's live Deployment uses: its pod template,
 * and each of its Pods' spec images and the digests their containers actually run (imageID),
 * old Pods of a rollout in progress included. A Deployment that does not exist runs nothing;
 * any other failure throws, because the registry must not delete what it could not check.
 */
export async function runningImages(
  ctx: KubeCallContext,
  target: KubeTarget,
  out = new Set<string>(),
): Promise<Set<string>> {
  const { namespace, deployment: name } = target;
  let d: DeploymentView;
  try {
    d = await readDeployment(ctx, target, 'read running images');
  } catch (err) {
    if (err instanceof KubeNotFoundError) {
      logger.info('deployment not found; it runs no images', {
        namespace,
        deployment: name,
        context: ctx.context,
      });
      return out;
    }
    throw err;
  }
  for (const c of [
    ...(d.spec.template.spec.initContainers ?? []),
    ...d.spec.template.spec.containers,
  ])
    add(out, c.image);
  const pods = listView.parse(
    await withRetry(
      {
        step: 'read running images',
        verb: 'list',
        resource: 'pods',
        namespace,
        context: ctx.context,
      },
      ctx.retry,
      () =>
        apiRequest(ctx.kc, {
          method: 'GET',
          path: podsPath(namespace),
          query: { labelSelector: selectorString(d.spec.selector) },
        }),
    ),
  );
  for (const item of pods.items) {
    const pod = podView.parse(item);
    for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])])
      add(out, c.image);
    for (const s of [
      ...(pod.status?.initContainerStatuses ?? []),
      ...(pod.status?.containerStatuses ?? []),
    ]) {
      add(out, s.image);
      if (s.imageID) add(out, imageIdRef(s.imageID));
    }
  }
  return out;
}
