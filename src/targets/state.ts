import type { Redis } from 'ioredis';
import { z } from 'zod';

/** What a target runs after a successful deploy or rollback. */
export const releaseSchema = z.object({
  sha: z.string(),
  ref: z.string(),
  pipelineId: z.number().int().nonnegative(),
  /** digest the release's tag resolved to (the first repository's) */
  digest: z.string().optional(),
  /** repository -> digest, for every repository of the target */
  digests: z.record(z.string(), z.string()).optional(),
  /** container -> image reference as set on the Deployment */
  images: z.record(z.string(), z.string()),
  deployedAt: z.string(),
  jobId: z.string(),
  by: z.string(),
});
export type Release = z.infer<typeof releaseSchema>;

export const outcomeSchema = z.enum(['success', 'failed', 'rolled-back', 'superseded', 'skipped']);
export type Outcome = z.infer<typeof outcomeSchema>;

export const stepRecordSchema = z.object({
  name: z.string(),
  ms: z.number(),
  status: z.enum(['done', 'skipped', 'failed']),
  detail: z.string().optional(),
});
export type StepRecord = z.infer<typeof stepRecordSchema>;

/** One entry of a target's deploy history. */
export const historyEntrySchema = z.object({
  jobId: z.string(),
  kind: z.enum(['deploy', 'rollback']),
  sha: z.string(),
  ref: z.string(),
  pipelineId: z.number().int().nonnegative(),
  outcome: outcomeSchema,
  reason: z.string().optional(),
  by: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  steps: z.array(stepRecordSchema),
});
export type HistoryEntry = z.infer<typeof historyEntrySchema>;

const HISTORY_LIMIT = 200;
const RELEASES_LIMIT = 50;

// Raises the watermark only; returns the watermark after the call.
const RAISE_WATERMARK = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'watermark') or '0')
local new = tonumber(ARGV[1])
if new > cur then
  redis.call('HSET', KEYS[1], 'watermark', ARGV[1])
  return new
end
return cur`;

/**
 * Per-target state: the newest pipeline accepted (watermark, for "never roll back to an
 * older pipeline"), what runs now, a bounded history and the list of releases a rollback
 * can return to.
 */
export class TargetState {
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(redis: Redis, prefix: string) {
    this.redis = redis;
    this.prefix = prefix;
  }

  private key(target: string, part?: string): string {
    return `${this.prefix}:target:${target}${part ? `:${part}` : ''}`;
  }

  async watermark(target: string): Promise<number> {
    return Number((await this.redis.hget(this.key(target), 'watermark')) ?? 0);
  }

  /** Records that a pipeline was accepted for the target; returns the watermark after it. */
  async raiseWatermark(target: string, pipelineId: number): Promise<number> {
    return Number(await this.redis.eval(RAISE_WATERMARK, 1, this.key(target), String(pipelineId)));
  }

  async current(target: string): Promise<Release | null> {
    const raw = await this.redis.hget(this.key(target), 'current');
    return raw ? releaseSchema.parse(JSON.parse(raw)) : null;
  }

  async lastOutcome(target: string): Promise<HistoryEntry | null> {
    const raw = await this.redis.lindex(this.key(target, 'history'), 0);
    return raw ? historyEntrySchema.parse(JSON.parse(raw)) : null;
  }

  /** A successful deploy or rollback: the release becomes current and joins the releases. */
  async recordRelease(target: string, release: Release, entry: HistoryEntry): Promise<void> {
    const json = JSON.stringify(release);
    await this.redis
      .multi()
      .hset(this.key(target), 'current', json)
      .hset(this.key(target), 'lastSuccessAt', release.deployedAt)
      .lpush(this.key(target, 'releases'), json)
      .ltrim(this.key(target, 'releases'), 0, RELEASES_LIMIT - 1)
      .lpush(this.key(target, 'history'), JSON.stringify(entry))
      .ltrim(this.key(target, 'history'), 0, HISTORY_LIMIT - 1)
      .exec();
  }

  async recordOutcome(target: string, entry: HistoryEntry): Promise<void> {
    await this.redis
      .multi()
      .lpush(this.key(target, 'history'), JSON.stringify(entry))
      .ltrim(this.key(target, 'history'), 0, HISTORY_LIMIT - 1)
      .exec();
  }

  async history(
    target: string,
    offset: number,
    limit: number,
  ): Promise<{ items: HistoryEntry[]; total: number }> {
    const [items, total] = await Promise.all([
      this.redis.lrange(this.key(target, 'history'), offset, offset + limit - 1),
      this.redis.llen(this.key(target, 'history')),
    ]);
    return { items: items.map((s) => historyEntrySchema.parse(JSON.parse(s))), total };
  }

  /** Releases newest first (the first is the current one when the last deploy succeeded). */
  async releases(target: string): Promise<Release[]> {
    const items = await this.redis.lrange(this.key(target, 'releases'), 0, -1);
    return items.map((s) => releaseSchema.parse(JSON.parse(s)));
  }

  async lastSuccessAt(target: string): Promise<string | null> {
    return this.redis.hget(this.key(target), 'lastSuccessAt');
  }
}
