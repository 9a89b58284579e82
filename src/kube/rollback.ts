import { PatchStrategy } from '@kubernetes/client-node';
import { z } from 'zod';
import { logger } from '../log.ts';
import { readDeploymentJson } from './read-deployment.ts';
import { apiRequest } from './api-request.ts';
import { deploymentPath, replicaSetsPath, type KubeCallContext } from './context.ts';
import { KubeRequestError } from './errors.ts';
import type { KubeTarget } from './images.ts';
import { withRetry } from './retry.ts';
import { setImages, type SetImagesResult } from './set-images.ts';
import { waitForRollout, type RolloutResult, type WaitOptions } from './wait-for-rollout.ts';
import {
  deploymentView,
  listView,
  replicaSetView,
  selectorString,
  type ReplicaSetView,
} from './views.ts';

export interface RollbackResult {
  set: SetImagesResult;
  rollout: RolloutResult;
}

/** Puts back the images a deploy replaced (from setImages' `previousImages`), then waits for that rollout. */
export async function rollback(
  ctx: KubeCallContext,
  target: KubeTarget,
  previousImages: Record<string, string>,
  cause: string,
  wait: WaitOptions,
): Promise<RollbackResult> {
  const set = await setImages(ctx, target, previousImages, cause);
  logger.info('rolling back deployment images', {
    namespace: target.namespace,
    deployment: target.deployment,
    images: previousImages,
    changed: set.changed,
  });
  const rollout = await waitForRollout(ctx, target, wait);
  return { set, rollout };
}

export interface UndoResult {
  /** the revision rolled back to */
  revision: number;
  /** false when the Deployment's template already equals that revision (kubectl: "skipped rollback") */
  changed: boolean;
  rollout: RolloutResult;
}

export const REVISION = 'deployment.kubernetes.io/revision';
const POD_TEMPLATE_HASH = 'pod-template-hash';
/** Annotations that belong to the Deployment, not to a revision: kubectl keeps the Deployment's own. */
const DEPLOYMENT_OWN_ANNOTATIONS = [
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION,
  'deployment.kubernetes.io/revision-history',
  'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas',
  'deprecated.deployment.rollback.to',
];

const templateOf = z.object({ spec: z.object({ template: z.record(z.string(), z.unknown()) }) });

function revisionOf(rs: ReplicaSetView): number {
  const n = Number(rs.metadata.annotations?.[REVISION]);
  return Number.isInteger(n) && n > 0 ? n : 0;
}

const templateLabels = z
  .object({
    metadata: z
      .object({ labels: z.record(z.string(), z.string()).optional() })
      .loose()
      .optional(),
  })
  .loose();

/** The template without the controller's `pod-template-hash` label, which only names the ReplicaSet. */
function withoutHash(template: Record<string, unknown>): Record<string, unknown> {
  const copy = templateLabels.parse(structuredClone(template));
  const labels = copy.metadata?.labels;
  if (copy.metadata && labels)
    copy.metadata.labels = Object.fromEntries(
      Object.entries(labels).filter(([k]) => k !== POD_TEMPLATE_HASH),
    );
  return copy;
}

/** Deep equality of two JSON values, ignoring key order. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) =>
    sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}

/**
 * `kubectl rollout undo`, exactly: restores the pod template (and annotations) of a recorded
 * ReplicaSet, the previous revision by default or the one named; refuses a paused Deployment.
 * The controller then revives that ReplicaSet as the newest revision. Then waits for the rollout.
 */
export async function undoToRevision(
  ctx: KubeCallContext,
  target: KubeTarget,
  revision: number | undefined,
  wait: WaitOptions,
): Promise<UndoResult> {
  const { namespace, deployment: name } = target;
  const step = 'undo deployment rollout';
  const raw = await readDeploymentJson(ctx, target, 'read deployment');
  const d = deploymentView.parse(raw);
  if (d.spec.paused)
    throw new KubeRequestError(
      step,
      `deployment ${namespace}/${name} is paused; resume it before rolling back`,
      { context: ctx.context },
    );

  const list = listView.parse(
    await withRetry(
      {
        step: 'list deployment revisions',
        verb: 'list',
        resource: 'replicasets.apps',
        namespace,
        context: ctx.context,
      },
      ctx.retry,
      () =>
        apiRequest(ctx.kc, {
          method: 'GET',
          path: replicaSetsPath(namespace),
          query: { labelSelector: selectorString(d.spec.selector) },
        }),
    ),
  );
  const owned = list.items
    .map((item) => replicaSetView.parse(item))
    .filter((rs) =>
      (rs.metadata.ownerReferences ?? []).some(
        (o) => o.controller === true && o.uid === d.metadata.uid,
      ),
    );
  let chosen: ReplicaSetView | undefined;
  if (revision !== undefined && revision > 0) {
    chosen = owned.find((rs) => revisionOf(rs) === revision);
    if (!chosen)
      throw new KubeRequestError(
        step,
        `deployment ${namespace}/${name} has no revision ${revision} (it has: ${
          owned
            .map(revisionOf)
            .sort((a, b) => a - b)
            .join(', ') || 'none'
        })`,
        { context: ctx.context },
      );
  } else {
    // The previous revision: the second highest, as kubectl picks it.
    const sorted = [...owned].sort((a, b) => revisionOf(b) - revisionOf(a));
    chosen = sorted[1];
    if (!chosen)
      throw new KubeRequestError(
        step,
        `deployment ${namespace}/${name} has no previous revision to roll back to`,
        { context: ctx.context },
      );
  }
  const toRevision = revisionOf(chosen);
  const template = withoutHash(chosen.spec.template);
  const currentTemplate = withoutHash(templateOf.parse(raw).spec.template);
  if (sameJson(template, currentTemplate)) {
    logger.info('rollback skipped: the deployment already runs that revision', {
      namespace,
      deployment: name,
      revision: toRevision,
    });
    return {
      revision: toRevision,
      changed: false,
      rollout: await waitForRollout(ctx, target, wait),
    };
  }

  const annotations: Record<string, string> = {};
  for (const k of DEPLOYMENT_OWN_ANNOTATIONS) {
    const v = d.metadata.annotations?.[k];
    if (v !== undefined) annotations[k] = v;
  }
  for (const [k, v] of Object.entries(chosen.metadata.annotations ?? {}))
    if (!DEPLOYMENT_OWN_ANNOTATIONS.includes(k)) annotations[k] = v;

  await withRetry(
    { step, verb: 'patch', resource: 'deployments.apps', namespace, name, context: ctx.context },
    ctx.retry,
    () =>
      apiRequest(ctx.kc, {
        method: 'PATCH',
        path: deploymentPath(namespace, name),
        query: { fieldManager: ctx.fieldManager },
        contentType: PatchStrategy.JsonPatch,
        body: [
          { op: 'replace', path: '/spec/template', value: template },
          { op: 'replace', path: '/metadata/annotations', value: annotations },
        ],
      }),
  );
  logger.info('deployment rolled back to revision', {
    namespace,
    deployment: name,
    revision: toRevision,
  });
  return { revision: toRevision, changed: true, rollout: await waitForRollout(ctx, target, wait) };
}
