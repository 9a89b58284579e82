import { z } from 'zod';

/** A step's saved result on its job, so a retried job resumes instead of repeating it. */
export const savedStepSchema = z.object({
  status: z.enum(['done', 'skipped', 'failed']),
  ms: z.number(),
  at: z.string(),
  detail: z.string().optional(),
  result: z.unknown().optional(),
});
export type SavedStep = z.infer<typeof savedStepSchema>;
const steps = z.record(z.string(), savedStepSchema).optional();

const sha = z.string().regex(/^[0-9a-f]{7,64}$/, 'a git commit sha');

/** Who or what asked for a deploy; shown in the change-cause and in history. */
export const triggerSchema = z.object({
  kind: z.enum(['webhook', 'api', 'cli', 'sandbox']),
  /** GitLab username (webhook) or API token name */
  user: z.string().optional(),
  pipelineUrl: z.string().optional(),
  pipelineSource: z.string().optional(),
});

export const deployJobSchema = z.object({
  target: z.string(),
  sha,
  ref: z.string(),
  tag: z.boolean().default(false),
  /** GitLab pipeline id: orders deploys of one target (newest wins) */
  pipelineId: z.number().int().positive(),
  trigger: triggerSchema,
  /** deploy even when the target already runs this sha or a newer pipeline was queued */
  force: z.boolean().default(false),
  correlationId: z.string(),
  requestedAt: z.string(),
  steps,
});
export type DeployJobData = z.infer<typeof deployJobSchema>;

export const rollbackJobSchema = z.object({
  target: z.string(),
  /** the release to return to; the previous one when absent */
  toSha: sha.optional(),
  trigger: triggerSchema,
  correlationId: z.string(),
  requestedAt: z.string(),
  steps,
});
export type RollbackJobData = z.infer<typeof rollbackJobSchema>;

export const cleanupCiJobSchema = z.object({
  target: z.string(),
  pipelineId: z.number().int().positive(),
  sha,
  ref: z.string(),
  status: z.string(),
  correlationId: z.string(),
});
export type CleanupCiJobData = z.infer<typeof cleanupCiJobSchema>;

export type DeployJobName = 'deploy' | 'rollback';
