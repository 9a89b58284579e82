import { retry } from '../retry.ts';
import { GitLabUnavailableError } from './errors.ts';

export interface RetryOptions {
  /** total tries, including the first; 1 means no retry */
  attempts: number;
  /** delay before the first retry; doubles each time, randomized up to twice that */
  baseMs: number;
  /** cap for one delay */
  maxMs?: number;
  /** which errors are worth another try; default: GitLabUnavailableError only */
  retryOn?: (err: unknown) => boolean;
  /** told before each retry, e.g. to log it */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Runs fn until it succeeds, the error is not retryable, or attempts run out; the last error
 * is thrown as is. The backoff doubles with jitter (src/retry.ts).
 */
export function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  return retry(fn, {
    attempts: Math.max(1, Math.floor(opts.attempts)),
    baseMs: opts.baseMs,
    maxMs: opts.maxMs ?? 30_000,
    retryOn: opts.retryOn ?? ((err: unknown) => err instanceof GitLabUnavailableError),
    onRetry: opts.onRetry,
  });
}
