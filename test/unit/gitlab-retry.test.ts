/** withRetry: which errors are tried again, how often, and with what delays. */
import { describe, expect, it } from 'vitest';
import { GitLabRequestError, GitLabUnavailableError } from '../../src/gitlab/errors.ts';
import { withRetry } from '../../src/gitlab/retry.ts';

const op = { operation: 'setCommitStatus', project: 1 };
const unavailable = (): GitLabUnavailableError =>
  new GitLabUnavailableError(op, 503, '503 Service Unavailable');

describe('withRetry', () => {
  it('retries an unavailable GitLab until it answers', async () => {
    let calls = 0;
    const result = await withRetry(
      async (attempt) => {
        calls += 1;
        if (attempt < 3) throw unavailable();
        return 'done';
      },
      { attempts: 5, baseMs: 1 },
    );
    expect(result).toBe('done');
    expect(calls).toBe(3);
  });

  it('does not retry a request GitLab refused', async () => {
    let calls = 0;
    const refused = new GitLabRequestError(op, 400, 'bad');
    await expect(
      withRetry(
        async () => {
          calls += 1;
          throw refused;
        },
        { attempts: 5, baseMs: 1 },
      ),
    ).rejects.toBe(refused);
    expect(calls).toBe(1);
  });

  it('throws the last error once attempts run out', async () => {
    let calls = 0;
    const errors: Error[] = [];
    const p = withRetry(
      async () => {
        calls += 1;
        const e = unavailable();
        errors.push(e);
        throw e;
      },
      { attempts: 3, baseMs: 1 },
    );
    await expect(p).rejects.toBeInstanceOf(GitLabUnavailableError);
    await p.catch((e: unknown) => expect(e).toBe(errors[2]));
    expect(calls).toBe(3);
  });

  it('doubles the delay with jitter, capped, and reports each retry', async () => {
    const seen: [number, number][] = [];
    await expect(
      withRetry(
        async () => {
          throw unavailable();
        },
        {
          attempts: 5,
          baseMs: 4,
          maxMs: 10,
          onRetry: (_e, attempt, delayMs) => seen.push([attempt, delayMs]),
        },
      ),
    ).rejects.toBeInstanceOf(GitLabUnavailableError);
    expect(seen.map(([a]) => a)).toEqual([1, 2, 3, 4]);
    // base × 2^(n-1), randomized up to twice that, never over maxMs
    const low = [4, 8, 10, 10];
    const high = [8, 10, 10, 10];
    seen.forEach(([, delay], i) => {
      expect(delay).toBeGreaterThanOrEqual(low[i] ?? 0);
      expect(delay).toBeLessThanOrEqual(high[i] ?? 0);
    });
  });

  it('treats attempts below 1 as one try, and honours a custom retryOn', async () => {
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls += 1;
          throw unavailable();
        },
        { attempts: 0, baseMs: 1 },
      ),
    ).rejects.toBeInstanceOf(GitLabUnavailableError);
    expect(calls).toBe(1);
    let custom = 0;
    const out = await withRetry(
      async (attempt) => {
        custom += 1;
        if (attempt === 1) throw new Error('flaky');
        return attempt;
      },
      { attempts: 2, baseMs: 1, retryOn: (e) => e instanceof Error && e.message === 'flaky' },
    );
    expect(out).toBe(2);
    expect(custom).toBe(2);
  });
});
