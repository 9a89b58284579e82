/**
 * The parts of GitLab's answers rollhook reads, checked at the edge: gitbeaker's types are
 * declarations, not checks, and a proxy or an old GitLab can answer something else.
 */
import { z } from 'zod';

export const environmentTier = z.enum(['production', 'staging', 'testing', 'development', 'other']);
export type EnvironmentTier = z.infer<typeof environmentTier>;

export const environmentSchema = z.looseObject({
  id: z.number().int(),
  name: z.string(),
  // older GitLab (before 13.10) has no tier
  tier: environmentTier.optional(),
  external_url: z.string().nullish(),
});
export const environmentListSchema = z.array(environmentSchema);

export const deploymentSchema = z.looseObject({
  id: z.number().int(),
  iid: z.number().int().optional(),
  sha: z.string(),
  ref: z.string(),
  status: z.string(),
});
export const deploymentListSchema = z.array(deploymentSchema);

export const pipelineSchema = z.looseObject({
  id: z.number().int(),
  sha: z.string(),
  ref: z.string(),
  status: z.string(),
  source: z.string().optional(),
});
export const pipelineListSchema = z.array(pipelineSchema);
/** GET of one pipeline: the detailed entity, which also says whether the ref is a tag. */
export const pipelineDetailSchema = pipelineSchema.extend({ tag: z.boolean() });

export const commitStatusSchema = z.looseObject({
  id: z.number().int(),
  status: z.string(),
  pipeline_id: z.number().int().nullish(),
});
