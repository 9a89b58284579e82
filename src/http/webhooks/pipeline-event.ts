import { z } from 'zod';

export const PIPELINE_STATUSES = [
  'created',
  'waiting_for_resource',
  'preparing',
  'waiting_for_callback',
  'pending',
  'running',
  'success',
  'failed',
  'canceling',
  'canceled',
  'skipped',
  'manual',
  'scheduled',
] as const;

export const TERMINAL_STATUSES: ReadonlySet<string> = new Set([
  'success',
  'failed',
  'canceled',
  'skipped',
]);

/**
 * The parts of GitLab's Pipeline Hook payload rollhook reads. Unknown fields are allowed
 * (GitLab adds fields over time); the ones read are checked strictly.
 */
export const pipelineEventSchema = z.object({
  object_kind: z.literal('pipeline'),
  object_attributes: z.object({
    id: z.number().int().positive(),
    iid: z.number().int().optional(),
    ref: z.string().min(1),
    tag: z.boolean(),
    sha: z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, 'a full commit sha (40 hex characters)'),
    source: z.string().min(1),
    status: z.enum(PIPELINE_STATUSES),
    url: z.string().optional(),
  }),
  user: z
    .object({ username: z.string().optional(), name: z.string().optional() })
    .nullable()
    .optional(),
  project: z.object({
    id: z.number().int().positive(),
    path_with_namespace: z.string().min(1),
    web_url: z.string().optional(),
  }),
});
export type PipelineEvent = z.infer<typeof pipelineEventSchema>;

/** Just enough of any event to find the project whose secrets authenticate it. */
export const projectRefSchema = z.object({
  project: z
    .object({ id: z.number().optional(), path_with_namespace: z.string().optional() })
    .optional(),
  project_id: z.number().optional(),
});
