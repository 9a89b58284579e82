import type { DeploymentView, PodView } from './views.ts';

/**
 * The rules of `kubectl rollout status` for a Deployment, as a pure function of the object,
 * plus the Pod states worth showing while a rollout waits.
 */

export type RolloutState = 'waiting' | 'complete' | 'failed' | 'paused';

export interface PodHint {
  pod: string;
  container: string;
  /** e.g. ImagePullBackOff, CrashLoopBackOff */
  reason: string;
  message?: string;
}

export interface RolloutProgress {
  /** spec.replicas */
  desired: number;
  /** status.updatedReplicas: Pods of the new template */
  updated: number;
  ready: number;
  available: number;
  /** status.replicas: Pods of every template, old ones pending termination included */
  total: number;
  generation: number;
  observedGeneration: number;
  /** kubectl's wording for where the rollout stands */
  message: string;
  hints: PodHint[];
}

export interface Judgement {
  state: RolloutState;
  /** condition reason for a failure, e.g. ProgressDeadlineExceeded */
  reason?: string;
  message: string;
}

export const PROGRESS_DEADLINE_EXCEEDED = 'ProgressDeadlineExceeded';

/** Pod waiting reasons that explain a stuck rollout. */
const HINT_REASONS = new Set([
  'ImagePullBackOff',
  'ErrImagePull',
  'ErrImageNeverPull',
  'InvalidImageName',
  'CrashLoopBackOff',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

export function judge(d: DeploymentView): Judgement {
  const name = d.metadata.name;
  const generation = d.metadata.generation ?? 0;
  const status = d.status ?? {};
  if (generation > (status.observedGeneration ?? 0)) {
    return { state: 'waiting', message: 'Waiting for deployment spec update to be observed...' };
  }
  const progressing = (status.conditions ?? []).find((c) => c.type === 'Progressing');
  if (progressing?.reason === PROGRESS_DEADLINE_EXCEEDED) {
    return {
      state: 'failed',
      reason: PROGRESS_DEADLINE_EXCEEDED,
      message: `deployment "${name}" exceeded its progress deadline${progressing.message ? `: ${progressing.message}` : ''}`,
    };
  }
  const desired = d.spec.replicas ?? 1;
  const updated = status.updatedReplicas ?? 0;
  const total = status.replicas ?? 0;
  const available = status.availableReplicas ?? 0;
  let waiting: string | undefined;
  if (updated < desired) {
    waiting = `Waiting for deployment "${name}" rollout to finish: ${updated} out of ${desired} new replicas have been updated...`;
  } else if (total > updated) {
    waiting = `Waiting for deployment "${name}" rollout to finish: ${total - updated} old replicas are pending termination...`;
  } else if (available < updated) {
    waiting = `Waiting for deployment "${name}" rollout to finish: ${available} of ${updated} updated replicas are available...`;
  }
  if (waiting === undefined)
    return { state: 'complete', message: `deployment "${name}" successfully rolled out` };
  // kubectl would wait forever on a paused Deployment; the controller will not move it.
  if (d.spec.paused)
    return {
      state: 'paused',
      reason: 'DeploymentPaused',
      message: `deployment "${name}" is paused: ${waiting}`,
    };
  return { state: 'waiting', message: waiting };
}

export function podHints(pods: Iterable<PodView>): PodHint[] {
  const hints: PodHint[] = [];
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp) continue;
    for (const s of [
      ...(pod.status?.initContainerStatuses ?? []),
      ...(pod.status?.containerStatuses ?? []),
    ]) {
      const reason = s.state?.waiting?.reason;
      if (reason && HINT_REASONS.has(reason)) {
        hints.push({
          pod: pod.metadata.name,
          container: s.name,
          reason,
          ...(s.state?.waiting?.message ? { message: s.state.waiting.message } : {}),
        });
      }
    }
  }
  return hints.sort((a, b) => a.pod.localeCompare(b.pod) || a.container.localeCompare(b.container));
}

export function progressOf(d: DeploymentView, message: string, hints: PodHint[]): RolloutProgress {
  const s = d.status ?? {};
  return {
    desired: d.spec.replicas ?? 1,
    updated: s.updatedReplicas ?? 0,
    ready: s.readyReplicas ?? 0,
    available: s.availableReplicas ?? 0,
    total: s.replicas ?? 0,
    generation: d.metadata.generation ?? 0,
    observedGeneration: s.observedGeneration ?? 0,
    message,
    hints,
  };
}
