import { UnrecoverableError } from 'bullmq';
import { isRetryable as kubeRetryable, KubeUnavailableError } from '../../src/kube/index.ts';
import {
  isRetryable as registryRetryable,
  RegistryUnavailableError,
} from '../../src/registry/index.ts';
import { LockLostError } from '../../src/queue/target-lock.ts';
import { StepFailed } from './job-steps.ts';

/** The release's image is not in the registry, and did not appear within images.waitForImage. */
export class ImageNotFoundError extends Error {
  override readonly name = 'ImageNotFoundError';
  readonly image: string;
  constructor(image: string, waitedMs: number) {
    super(
      `image ${image} is not in the registry (waited ${Math.round(waitedMs / 1000)} s); push it, then redeploy`,
    );
    this.image = image;
  }
}

/** The rollout did not complete; the failure path has run (rolled back, reported). */
export class RolloutFailedError extends Error {
  override readonly name = 'RolloutFailedError';
  readonly outcome: string;
  constructor(message: string, outcome: string) {
    super(message);
    this.outcome = outcome;
  }
}

/** A rollback asked for a release rollhook does not know, or whose image is gone. */
export class ReleaseUnavailableError extends Error {
  override readonly name = 'ReleaseUnavailableError';
}

/** The target's lock was lost or the worker is stopping: retry elsewhere, nothing is wrong. */
export class InterruptedError extends Error {
  override readonly name = 'InterruptedError';
}

/**
 * The one map from typed errors to what BullMQ does: retry with backoff when the cause is
 * passing (registry or cluster unavailable, interrupted), fail for good when a person must
 * act (missing image, permissions, bad config, failed rollout).
 */
export function retryable(err: unknown): boolean {
  const cause = err instanceof StepFailed ? err.cause : err;
  if (cause instanceof InterruptedError || cause instanceof LockLostError) return true;
  if (cause instanceof RegistryUnavailableError || cause instanceof KubeUnavailableError)
    return true;
  if (
    cause instanceof ImageNotFoundError ||
    cause instanceof RolloutFailedError ||
    cause instanceof ReleaseUnavailableError
  )
    return false;
  if (registryRetryable(cause) || kubeRetryable(cause)) return true;
  // Our own typed errors that are not retryable carry a `name` ending in Error and come from
  // the adapters; anything untyped (a bug, a network error escaping a client) is retried,
  // bounded by the job's attempts.
  return !(
    cause instanceof Error &&
    /^(Registry|Kube|Manifest|Digest|UnsupportedMediaType|InvalidRepository|ProtectedTag)/.test(
      cause.name,
    )
  );
}

/** What the processor throws: the error itself to retry, UnrecoverableError to stop. */
export function forBullMQ(err: unknown): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  if (retryable(err)) return e;
  const u = new UnrecoverableError(e.message);
  u.cause = e;
  return u;
}
