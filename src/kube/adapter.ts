import type { KubeConfig } from '@kubernetes/client-node';
import type { KubeCallContext } from './context.ts';
import type { KubeTarget } from './images.ts';
import { kubeConfigLoader, type KubeConfigLoader } from './kubeconfig.ts';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.ts';
import { rollback, undoToRevision, type RollbackResult, type UndoResult } from './rollback.ts';
import { runningImages } from './running-digests.ts';
import { setImages, type SetImagesResult } from './set-images.ts';
import { waitForRollout, type RolloutResult, type WaitOptions } from './wait-for-rollout.ts';

export interface KubeAdapterOptions {
  /** one kubeconfig file instead of the default chain (in-cluster, KUBECONFIG, ~/.kube/config) */
  kubeconfigPath?: string;
  /** how to get a KubeConfig for a context; overrides kubeconfigPath */
  loadKubeConfig?: KubeConfigLoader;
  retry?: Partial<RetryPolicy>;
  watchRetry?: Partial<RetryPolicy>;
  fieldManager?: string;
}

/**
 * The Deployment side of a deploy: patch images, follow the rollout, roll back, and tell the
 * registry what runs. Each call takes the target's `kubernetes` block; the kubeconfig of its
 * context is loaded once and kept.
 */
export class KubeAdapter {
  private readonly load: KubeConfigLoader;
  private readonly retry: RetryPolicy;
  private readonly watchRetry: RetryPolicy;
  private readonly fieldManager: string;

  constructor(opts: KubeAdapterOptions = {}) {
    this.load = opts.loadKubeConfig ?? kubeConfigLoader({ kubeconfigPath: opts.kubeconfigPath });
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.watchRetry = { attempts: 10, baseDelayMs: 500, maxDelayMs: 5_000, ...opts.watchRetry };
    this.fieldManager = opts.fieldManager ?? 'rollhook';
  }

  /** The KubeConfig a target's calls use (its context, or the default). */
  kubeConfig(target: Pick<KubeTarget, 'context'>): KubeConfig {
    return this.load(target.context);
  }

  private ctx(target: Pick<KubeTarget, 'context'>): KubeCallContext {
    return {
      kc: this.load(target.context),
      context: target.context,
      retry: this.retry,
      watchRetry: this.watchRetry,
      fieldManager: this.fieldManager,
    };
  }

  /** Sets container images (container name -> image reference) and the change-cause in one patch. */
  setImages(
    target: KubeTarget,
    images: Record<string, string>,
    cause: string,
  ): Promise<SetImagesResult> {
    return setImages(this.ctx(target), target, images, cause);
  }

  waitForRollout(target: KubeTarget, opts: WaitOptions): Promise<RolloutResult> {
    return waitForRollout(this.ctx(target), target, opts);
  }

  /** Restores the images setImages replaced, then waits for that rollout. */
  rollback(
    target: KubeTarget,
    previousImages: Record<string, string>,
    cause: string,
    wait: WaitOptions,
  ): Promise<RollbackResult> {
    return rollback(this.ctx(target), target, previousImages, cause, wait);
  }

  /** `kubectl rollout undo [--to-revision]`, then waits for that rollout. */
  undoToRevision(
    target: KubeTarget,
    revision: number | undefined,
    wait: WaitOptions,
  ): Promise<UndoResult> {
    return undoToRevision(this.ctx(target), target, revision, wait);
  }

  /**
   * Image references and sha256 digests the targets' live Deployments and their Pods use:
   * the registry must never delete these. Targets naming the same Deployment are read once.
   */
  async runningDigests(targets: KubeTarget[]): Promise<Set<string>> {
    const out = new Set<string>();
    const seen = new Set<string>();
    for (const t of targets) {
      const key = `${t.context ?? ''}\u0000${t.namespace}\u0000${t.deployment}`;
      if (seen.has(key)) continue;
      seen.add(key);
      await runningImages(this.ctx(t), t, out);
    }
    return out;
  }
}
