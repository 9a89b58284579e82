import { logger } from '../log.ts';
import { retry } from '../retry.ts';
import { isTransient, statusOf, toKubeError, type KubeOperation } from './errors.ts';

export interface RetryPolicy {
  /** tries in all, the first included */
  attempts: number;
  /** delay before the second try; doubles after each, with jitter */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 200, maxDelayMs: 5_000 };

/** For loops that count failures across calls themselves (list-watch reconnects). */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  // Jitter spreads several workers that hit the same busy apiserver.
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

/**
 * Runs one API call, repeating it on conflicts, throttling, 5xx and network errors; anything
 * else (403, 404, 422) fails at once. Failures come out as typed Kube*Error.
 */
export async function withRetry<T>(
  op: KubeOperation,
  policy: RetryPolicy,
  fn: () => Promise<T>,
  signal?: AbortSignal,
  opts: { retryConflicts?: boolean } = {},
): Promise<T> {
  let attempts = 0;
  // A conflict on a write with a resourceVersion precondition repeats forever: the caller must read again.
  const retryOn = (err: unknown): boolean =>
    !(opts.retryConflicts === false && statusOf(err) === 409) && isTransient(err);
  try {
    return await retry(
      (attempt) => {
        attempts = attempt;
        return fn();
      },
      {
        attempts: policy.attempts,
        baseMs: policy.baseDelayMs,
        maxMs: policy.maxDelayMs,
        retryOn,
        signal,
        onRetry: (err, attempt, delayMs) =>
          logger.warn('kubernetes call failed, retrying', {
            step: op.step,
            namespace: op.namespace,
            name: op.name,
            status: statusOf(err),
            attempt,
            delayMs,
          }),
      },
    );
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw toKubeError(err, op, attempts);
  }
}
