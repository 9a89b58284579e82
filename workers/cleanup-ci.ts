import { UnrecoverableError, type Job } from 'bullmq';
import type { Config } from '../src/config/schema.ts';
import { logger, withLogContext } from '../src/log.ts';
import { cleanupCiJobSchema, type CleanupCiJobData } from '../src/queue/jobs.ts';
import { isRetryable, type DeleteTagResult, type ImageRegistry } from '../src/registry/index.ts';

export interface CleanupCiDeps {
  registry: Pick<ImageRegistry, 'deleteTag'>;
  config: Config;
}

export interface CleanupCiResult {
  outcome: 'done' | 'skipped';
  reason?: string;
  repository?: string;
  tags: ({ tag: string } & DeleteTagResult)[];
}

/** GitLab pipeline statuses after which the pipeline's CI images are no longer needed. */
export const TERMINAL_PIPELINE_STATUSES = new Set([
  'success',
  'failed',
  'canceled',
  'cancelled',
  'skipped',
]);

/**
 * `ciTags` templates: `{sha}`, `{shortSha}` (8 characters, as CI_COMMIT_SHORT_SHA),
 * `{ref}` (slugged as CI_COMMIT_REF_SLUG) and `{pipeline}` (the pipeline id).
 */
export function expandCiTag(
  template: string,
  data: Pick<CleanupCiJobData, 'sha' | 'ref' | 'pipelineId'>,
): string {
  return template
    .replaceAll('{sha}', data.sha)
    .replaceAll('{shortSha}', data.sha.slice(0, 8))
    .replaceAll('{ref}', refSlug(data.ref))
    .replaceAll('{pipeline}', String(data.pipelineId));
}

/** GitLab's CI_COMMIT_REF_SLUG: lowercased, cut to 63 bytes, anything but 0-9 and a-z replaced by `-`, no leading or trailing `-`. */
export function refSlug(ref: string): string {
  return ref
    .toLowerCase()
    .slice(0, 63)
    .replace(/[^0-9a-z]/g, '-')
    .replace(/^-+|-+$/g, '');
}

/**
 * The CI image cleanup job: when a pipeline has ended, in any state, remove that pipeline's
 * CI image tags with deleteTag, which leaves other tags sharing the digest (the branch's
 * cache tag) in place. A tag already gone counts as done, so the job may run any number
 * of times. Registry outages are retried by the queue; anything else is unrecoverable.
 */
export function makeCleanupCiProcessor(deps: CleanupCiDeps) {
  const targets = new Map(deps.config.targets.map((t) => [t.name, t]));
  return async (job: Pick<Job<CleanupCiJobData>, 'data' | 'id'>): Promise<CleanupCiResult> => {
    const parsed = cleanupCiJobSchema.safeParse(job.data);
    if (!parsed.success)
      throw new UnrecoverableError(
        `invalid cleanup-ci job: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    const data = parsed.data;
    return withLogContext(
      {
        correlationId: data.correlationId,
        jobId: job.id ?? '',
        target: data.target,
        pipelineId: data.pipelineId,
      },
      async () => {
        const target = targets.get(data.target);
        if (!target) return skipped(`target ${data.target} is not in the config any more`);
        if (!TERMINAL_PIPELINE_STATUSES.has(data.status))
          return skipped(`pipeline status ${data.status} is not final`);
        const repository = target.images.ciRepository;
        if (!repository || target.images.ciTags.length === 0)
          return skipped('the target configures no CI image tags');

        const tags = [...new Set(target.images.ciTags.map((t) => expandCiTag(t, data)))];
        const results: CleanupCiResult['tags'] = [];
        for (const tag of tags) {
          try {
            results.push({ tag, ...(await deps.registry.deleteTag(repository, tag)) });
          } catch (err) {
            if (isRetryable(err)) throw err;
            // Bad permissions, a protected tag in ciTags, an invalid tag: a person must act.
            logger.error('CI image cleanup refused', { repository, tag, error: err });
            throw new UnrecoverableError(
              `CI image cleanup of ${repository}:${tag}: ${err instanceof Error ? err.message : String(err)}`,
            );
          }
        }
        logger.info('CI image cleanup done', {
          repository,
          pipelineStatus: data.status,
          tags: results.map((r) => `${r.tag}: ${r.method}`),
        });
        return { outcome: 'done', repository, tags: results };
      },
    );
  };
}

function skipped(reason: string): CleanupCiResult {
  logger.info('CI image cleanup skipped', { reason });
  return { outcome: 'skipped', reason, tags: [] };
}
