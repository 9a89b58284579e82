import pRetry from 'p-retry';

export interface RetryOptions {
  /** tries in all, the first included; 1 means no retry */
  attempts: number;
  /** delay before the second try; doubles after each, randomized up to twice that, capped */
  baseMs: number;
  maxMs: number;
  /** which errors are worth another try */
  retryOn: (err: unknown) => boolean;
  /** told before each retry, e.g. to log it */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** aborting rejects with `signal.reason` and stops the waits */
  signal?: AbortSignal;
}

/** Waits ms; aborting the signal rejects at once with its reason. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Exponential backoff with jitter, shared by the adapters (p-retry underneath); the last
 * error is thrown as it is, so each adapter types it by cause itself. Jitter keeps workers
 * that failed together from retrying together.
 */
export function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  return pRetry(fn, {
    retries: Math.max(0, Math.floor(opts.attempts) - 1),
    factor: 2,
    minTimeout: opts.baseMs,
    maxTimeout: opts.maxMs,
    randomize: true,
    signal: opts.signal,
    shouldRetry: ({ error }) => opts.retryOn(error),
    onFailedAttempt: ({ error, attemptNumber, retriesLeft, retryDelay }) => {
      if (retriesLeft > 0 && opts.retryOn(error)) opts.onRetry?.(error, attemptNumber, retryDelay);
    },
  });
}
