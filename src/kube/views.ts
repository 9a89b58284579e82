import { z } from 'zod';

/**
 * The few fields rollhook reads from Deployments, ReplicaSets and Pods, validated where they
 * enter (API responses and watch events). Anything else in an object is ignored.
 */

const labelSelector = z.object({
  matchLabels: z.record(z.string(), z.string()).nullish(),
  matchExpressions: z
    .array(
      z.object({ key: z.string(), operator: z.string(), values: z.array(z.string()).nullish() }),
    )
    .nullish(),
});
export type LabelSelector = z.infer<typeof labelSelector>;

const container = z.object({ name: z.string(), image: z.string().nullish() });

const objectMeta = z.object({
  name: z.string(),
  namespace: z.string().nullish(),
  uid: z.string().nullish(),
  generation: z.number().nullish(),
  resourceVersion: z.string().nullish(),
  deletionTimestamp: z.string().nullish(),
  annotations: z.record(z.string(), z.string()).nullish(),
  labels: z.record(z.string(), z.string()).nullish(),
  ownerReferences: z
    .array(
      z.object({
        uid: z.string(),
        kind: z.string(),
        name: z.string(),
        controller: z.boolean().nullish(),
      }),
    )
    .nullish(),
});

const podSpec = z.object({
  containers: z.array(container),
  initContainers: z.array(container).nullish(),
});

export const condition = z.object({
  type: z.string(),
  status: z.string(),
  reason: z.string().nullish(),
  message: z.string().nullish(),
});

export const deploymentView = z.object({
  metadata: objectMeta,
  spec: z.object({
    replicas: z.number().nullish(),
    paused: z.boolean().nullish(),
    selector: labelSelector,
    template: z.object({
      metadata: z.object({ labels: z.record(z.string(), z.string()).nullish() }).nullish(),
      spec: podSpec,
    }),
  }),
  status: z
    .object({
      observedGeneration: z.number().nullish(),
      replicas: z.number().nullish(),
      updatedReplicas: z.number().nullish(),
      readyReplicas: z.number().nullish(),
      availableReplicas: z.number().nullish(),
      unavailableReplicas: z.number().nullish(),
      conditions: z.array(condition).nullish(),
    })
    .nullish(),
});
export type DeploymentView = z.infer<typeof deploymentView>;

export const replicaSetView = z.object({
  metadata: objectMeta,
  spec: z.object({ replicas: z.number().nullish(), template: z.record(z.string(), z.unknown()) }),
});
export type ReplicaSetView = z.infer<typeof replicaSetView>;

const containerStatus = z.object({
  name: z.string(),
  image: z.string().nullish(),
  imageID: z.string().nullish(),
  state: z
    .object({
      waiting: z.object({ reason: z.string().nullish(), message: z.string().nullish() }).nullish(),
    })
    .nullish(),
});

export const podView = z.object({
  metadata: objectMeta,
  spec: podSpec.nullish(),
  status: z
    .object({
      phase: z.string().nullish(),
      reason: z.string().nullish(),
      containerStatuses: z.array(containerStatus).nullish(),
      initContainerStatuses: z.array(containerStatus).nullish(),
    })
    .nullish(),
});
export type PodView = z.infer<typeof podView>;

/** A list response: its items (validated by the caller) and the resourceVersion to watch from. */
export const listView = z.object({
  metadata: z.object({ resourceVersion: z.string().nullish() }).nullish(),
  items: z.array(z.unknown()),
});

/** The object of a watch ERROR event: a Status. */
export const statusView = z.object({
  code: z.number().nullish(),
  reason: z.string().nullish(),
  message: z.string().nullish(),
});

/** `matchLabels` and `matchExpressions` as a label selector query string. */
export function selectorString(sel: LabelSelector): string {
  const parts = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}
