import { logger } from '../log.ts';
import { deploymentPath, podsPath, type KubeCallContext } from './context.ts';
import type { KubeTarget } from './images.ts';
import { ListWatch, type ListWatchStats } from './list-watch.ts';
import { readDeployment } from './read-deployment.ts';
import { judge, podHints, progressOf, type RolloutProgress } from './rollout-status.ts';
import {
  deploymentView,
  podView,
  selectorString,
  type DeploymentView,
  type PodView,
} from './views.ts';

export type RolloutOutcome = 'complete' | 'failed' | 'timeout' | 'deleted' | 'paused';

export interface RolloutResult {
  outcome: RolloutOutcome;
  /** e.g. ProgressDeadlineExceeded, DeploymentPaused */
  reason?: string;
  message: string;
  progress: RolloutProgress;
  /** how the Deployment was followed: lists, watches, expired watches */
  stats: ListWatchStats;
}

export interface WaitOptions {
  timeoutMs: number;
  /** aborting rejects with signal.reason (a shutting-down worker, a cancelled job) */
  signal?: AbortSignal;
  /** called whenever the progress changes, first with the state found at the start */
  onProgress?: (p: RolloutProgress) => void;
  /** server-side length of each watch; short values are for tests that make watches end mid-rollout */
  watchTimeoutSeconds?: number;
}

function sameProgress(a: RolloutProgress | undefined, b: RolloutProgress): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Waits until the Deployment's rollout ends, by the rules of `kubectl rollout status`, driven
 * by watch events on the Deployment (and on its Pods, for hints such as ImagePullBackOff).
 * Resolves with the outcome; rejects with a Kube*Error when the cluster cannot be read
 * (a missing Deployment at the start is KubeNotFoundError; one deleted meanwhile is `deleted`).
 */
export async function waitForRollout(
  ctx: KubeCallContext,
  target: KubeTarget,
  opts: WaitOptions,
): Promise<RolloutResult> {
  const { namespace, deployment: name } = target;
  opts.signal?.throwIfAborted();
  const first = await readDeployment(ctx, target, 'read deployment', opts.signal);
  const uid = first.metadata.uid;
  // Short watches, jittered: several waits on one apiserver do not reconnect in step, and each
  // ends before the client's 30 s idle timer would cut it.
  const watchTimeoutSeconds = opts.watchTimeoutSeconds ?? 20 + Math.floor(Math.random() * 8);

  return new Promise<RolloutResult>((resolve, reject) => {
    let done = false;
    let last: RolloutProgress | undefined;
    let lastDeployment: DeploymentView = first;
    let podsUsable = true;

    const deployments: ListWatch<DeploymentView> = new ListWatch({
      kc: ctx.kc,
      path: deploymentPath(namespace),
      fieldSelector: `metadata.name=${name}`,
      schema: deploymentView,
      key: (d) => d.metadata.name,
      onChange: () => evaluate(),
      onError: (err) => finish(() => reject(err)),
      op: {
        step: 'watch deployment rollout',
        resource: 'deployments.apps',
        namespace,
        name,
        context: ctx.context,
      },
      retry: ctx.watchRetry,
      watchTimeoutSeconds,
    });
    const pods: ListWatch<PodView> = new ListWatch({
      kc: ctx.kc,
      path: podsPath(namespace),
      labelSelector: selectorString(first.spec.selector),
      schema: podView,
      key: (p) => p.metadata.name,
      onChange: () => evaluate(),
      onError: (err) => {
        // Hints are a help, not a condition of the rollout: go on without them.
        podsUsable = false;
        logger.warn('cannot follow the rollout pods; continuing without pod hints', {
          namespace,
          deployment: name,
          error: err.message,
        });
      },
      op: { step: 'watch rollout pods', resource: 'pods', namespace, context: ctx.context },
      retry: ctx.watchRetry,
      watchTimeoutSeconds,
    });

    const stats = (): ListWatchStats => ({ ...deployments.stats });
    const result = (outcome: RolloutOutcome, message: string, reason?: string): RolloutResult => ({
      outcome,
      message,
      ...(reason ? { reason } : {}),
      progress: last ?? progressOf(lastDeployment, message, []),
      stats: stats(),
    });

    function finish(settle: () => void): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      deployments.stop();
      pods.stop();
      settle();
    }

    function evaluate(): void {
      if (done || !deployments.synced) return;
      const d = deployments.items.get(name);
      if (!d || (uid && d.metadata.uid !== uid) || d.metadata.deletionTimestamp) {
        finish(() =>
          resolve(result('deleted', `deployment "${name}" was deleted during the rollout`)),
        );
        return;
      }
      lastDeployment = d;
      const verdict = judge(d);
      const hints = podsUsable && pods.synced ? podHints(pods.items.values()) : [];
      const progress = progressOf(d, verdict.message, hints);
      if (!sameProgress(last, progress)) {
        last = progress;
        try {
          opts.onProgress?.(progress);
        } catch (err) {
          logger.warn('rollout progress listener failed', {
            error: err instanceof Error ? err.message : String(err),
          });
        }
      }
      const state = verdict.state;
      if (state !== 'waiting')
        finish(() => resolve(result(state, verdict.message, verdict.reason)));
    }

    const timer = setTimeout(() => {
      const where = last?.message ?? judge(lastDeployment).message;
      finish(() =>
        resolve(
          result(
            'timeout',
            `rollout of deployment "${name}" did not finish within ${opts.timeoutMs} ms: ${where}`,
          ),
        ),
      );
    }, opts.timeoutMs);
    const onAbort = (): void => finish(() => reject(opts.signal?.reason));
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    deployments.start();
    pods.start();
  });
}
