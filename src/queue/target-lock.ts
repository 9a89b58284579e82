import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

// Compare-and-delete / compare-and-extend: only the owner may release or renew.
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
// Take the lock when free, or when its holder is an earlier attempt of the same job (a
// worker that died mid-job leaves its lock behind; BullMQ runs one attempt of a job id at a
// time, so that holder is gone).
const ACQUIRE = `
local cur = redis.call('GET', KEYS[1])
if (not cur) or string.sub(cur, 1, string.len(ARGV[3])) == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

/** The lock could not be renewed: another worker may own the target now. */
export class LockLostError extends Error {
  override readonly name = 'LockLostError';
}

export interface HeldLock {
  /** aborted when the lock could not be renewed: another worker may own the target now */
  readonly lost: AbortSignal;
  release(): Promise<void>;
}

/**
 * One deploy per target at a time across any number of worker processes: a Redis key per
 * target whose value names the owning job plus a random token, with a TTL renewed while
 * the job runs. BullMQ's open-source edition has no per-group concurrency, so this is it.
 */
export class TargetLocks {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly ttlMs: number;

  constructor(redis: Redis, prefix: string, ttlMs: number) {
    this.redis = redis;
    this.prefix = prefix;
    this.ttlMs = ttlMs;
  }

  private key(target: string): string {
    return `${this.prefix}:lock:target:${target}`;
  }

  async holder(target: string): Promise<string | null> {
    const v = await this.redis.get(this.key(target));
    return v ? (v.split('#')[0] ?? null) : null;
  }

  /** The lock, or null when another job holds it. */
  async acquire(target: string, jobId: string): Promise<HeldLock | null> {
    const key = this.key(target);
    const value = `${jobId}#${randomBytes(8).toString('hex')}`;
    const ok = await this.redis.eval(ACQUIRE, 1, key, value, String(this.ttlMs), `${jobId}#`);
    if (ok !== 1) return null;

    const lost = new AbortController();
    const renew = async (): Promise<void> => {
      try {
        const r = await this.redis.eval(RENEW, 1, key, value, String(this.ttlMs));
        if (r !== 1) lost.abort(new LockLostError(`lock on target ${target} was lost`));
      } catch {
        // A Redis blip: the next tick retries; the TTL covers two missed renewals.
      }
    };
    const timer = setInterval(() => void renew(), Math.max(100, Math.floor(this.ttlMs / 3)));
    timer.unref();
    return {
      lost: lost.signal,
      release: async () => {
        clearInterval(timer);
        await this.redis.eval(RELEASE, 1, key, value);
      },
    };
  }
}
