import { GitLabUnavailableError } from './errors.ts';

export interface RetryOptions {
  /** total tries, including the first; 1 means no retry */
  attempts: number;
  /** delay before the first retry; doubles each time, with jitter */
  baseMs: number;
  /** cap for one delay */
  maxMs?: number;
  /** which errors are worth another try; default: GitLabUnavailableError only */
  retryOn?: (err: unknown) => boolean;
  /** told before each retry, e.g. to log it */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs fn until it succeeds, the error is not retryable, or attempts run out; the last error
 * is thrown as is. Jitter (50–100 % of the delay) keeps workers that failed together from
 * retrying together.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  opts: RetryOptions,
): Promise<T> {
  const attempts = Math.max(1, Math.floor(opts.attempts));
  const retryOn = opts.retryOn ?? ((err: unknown) => err instanceof GitLabUnavailableError);
  const maxMs = opts.maxMs ?? 30_000;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || !retryOn(err)) throw err;
      const full = Math.min(maxMs, opts.baseMs * 2 ** (attempt - 1));
      const delayMs = Math.round(full * (0.5 + Math.random() * 0.5));
      opts.onRetry?.(err, attempt, delayMs);
      await sleep(delayMs);
    }
  }
}
