import { PatchStrategy } from '@kubernetes/client-node';
import { z } from 'zod';
import { logger } from '../log.ts';
import { apiRequest } from './api-request.ts';
import { deploymentPath, type KubeCallContext } from './context.ts';
import { KubeRequestError, KubeUnavailableError, statusOf, type KubeOperation } from './errors.ts';
import type { KubeTarget } from './images.ts';
import { withRetry } from './retry.ts';
import { readDeployment } from './read-deployment.ts';
import { deploymentView, type DeploymentView } from './views.ts';

export const CHANGE_CAUSE = 'kubernetes.io/change-cause';
/**
 * The images a patch replaced and the ones it set, kept on the Deployment by the same patch:
 * a job that crashed after patching and runs again still learns what to roll back to.
 */
export const PREVIOUS_IMAGES = 'rollhook/previous-images';

export interface SetImagesResult {
  /** container -> the image it had before; what a rollback restores */
  previousImages: Record<string, string>;
  /** false when every container already had its image: nothing was written */
  changed: boolean;
  /** metadata.generation after the call */
  generation: number;
}

const imageRefSchema = z
  .string()
  .regex(
    /^[^\s@]+(@sha256:[a-f0-9]{64})?$/,
    'an image reference (repo:tag or repo:tag@sha256:digest)',
  );
const imagesSchema = z
  .record(z.string().min(1), imageRefSchema)
  .refine((m) => Object.keys(m).length > 0, 'name at least one container');
const recordSchema = z.object({
  from: z.record(z.string(), z.string()),
  to: z.record(z.string(), z.string()),
});

function op(ctx: KubeCallContext, target: KubeTarget, step: string, verb: string): KubeOperation {
  return {
    step,
    verb,
    resource: 'deployments.apps',
    namespace: target.namespace,
    name: target.deployment,
    context: ctx.context,
  };
}

function currentImages(d: DeploymentView): Map<string, string> {
  const spec = d.spec.template.spec;
  return new Map(
    [...(spec.initContainers ?? []), ...spec.containers].map((c) => [c.name, c.image ?? '']),
  );
}

function recorded(
  d: DeploymentView,
  images: Record<string, string>,
): Record<string, string> | undefined {
  const raw = d.metadata.annotations?.[PREVIOUS_IMAGES];
  if (!raw) return undefined;
  try {
    const rec = recordSchema.parse(JSON.parse(raw));
    const sameChange = Object.entries(images).every(([c, img]) => rec.to[c] === img);
    return sameChange ? rec.from : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sets each named container's image with one strategic-merge patch, together with the
 * change-cause annotation. The patch carries the resourceVersion it was computed from, so
 * `previousImages` is exactly what it replaced; on a conflict it reads and tries again.
 * Images already in place: nothing is written (`changed: false`).
 */
export async function setImages(
  ctx: KubeCallContext,
  target: KubeTarget,
  images: Record<string, string>,
  cause: string,
): Promise<SetImagesResult> {
  const wanted = imagesSchema.parse(images);
  const unknown = Object.keys(wanted).filter((c) => !(c in target.containers));
  if (unknown.length) {
    throw new KubeRequestError(
      'set images',
      `container(s) ${unknown.join(', ')} are not configured for deployment ${target.namespace}/${target.deployment} (configured: ${Object.keys(target.containers).join(', ')})`,
      { context: ctx.context },
    );
  }
  for (let attempt = 1; ; attempt++) {
    const d = await readDeployment(ctx, target, 'read deployment');
    const current = currentImages(d);
    const missing = Object.keys(wanted).filter((c) => !current.has(c));
    if (missing.length) {
      // A strategic-merge patch would add such a container rather than fail.
      throw new KubeRequestError(
        'set images',
        `deployment ${target.namespace}/${target.deployment} has no container ${missing.join(', ')} (it has: ${[...current.keys()].join(', ')})`,
        { context: ctx.context },
      );
    }
    const previousImages = Object.fromEntries(
      Object.keys(wanted).map((c) => [c, current.get(c) ?? '']),
    );
    if (Object.entries(wanted).every(([c, img]) => current.get(c) === img)) {
      return {
        previousImages: recorded(d, wanted) ?? previousImages,
        changed: false,
        generation: d.metadata.generation ?? 0,
      };
    }
    const initNames = new Set((d.spec.template.spec.initContainers ?? []).map((c) => c.name));
    const entries = Object.entries(wanted).map(([name, image]) => ({ name, image }));
    const containers = entries.filter((c) => !initNames.has(c.name));
    const initContainers = entries.filter((c) => initNames.has(c.name));
    const body = {
      metadata: {
        resourceVersion: d.metadata.resourceVersion,
        annotations: {
          [CHANGE_CAUSE]: cause,
          [PREVIOUS_IMAGES]: JSON.stringify({ from: previousImages, to: wanted }),
        },
      },
      spec: {
        template: {
          spec: {
            ...(containers.length ? { containers } : {}),
            ...(initContainers.length ? { initContainers } : {}),
          },
        },
      },
    };
    try {
      const patched = deploymentView.parse(
        await withRetry(
          op(ctx, target, 'patch deployment images', 'patch'),
          ctx.retry,
          () =>
            apiRequest(ctx.kc, {
              method: 'PATCH',
              path: deploymentPath(target.namespace, target.deployment),
              query: { fieldManager: ctx.fieldManager },
              body,
              contentType: PatchStrategy.StrategicMergePatch,
            }),
          undefined,
          { retryConflicts: false },
        ),
      );
      logger.info('deployment images set', {
        namespace: target.namespace,
        deployment: target.deployment,
        images: wanted,
        previousImages,
        generation: patched.metadata.generation,
      });
      return { previousImages, changed: true, generation: patched.metadata.generation ?? 0 };
    } catch (err) {
      // Someone changed the Deployment between our read and our patch: read again.
      const conflict = err instanceof KubeUnavailableError && statusOf(err.cause) === 409;
      if (!conflict || attempt >= ctx.retry.attempts) throw err;
    }
  }
}
