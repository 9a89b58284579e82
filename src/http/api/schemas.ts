/**
 * The REST API's contract: every request is validated with these schemas, every response
 * is passed through them before it is sent, and /api/v1/openapi.json is generated from them
 * (z.toJSONSchema, draft 2020-12 = OpenAPI 3.1's dialect). One source, so the document
 * cannot drift from what the server does.
 */
import { z } from 'zod';

/** Schemas that are request bodies or parameters: documented as the input they accept. */
export const requestSchemas = z.registry<{ id: string }>();
/** Schemas of response bodies: documented as the output the server sends. */
export const responseSchemas = z.registry<{ id: string }>();

export const targetName = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    'a target name: lowercase letters, digits and dashes',
  )
  .describe('a configured target');

/** BullMQ job ids as rollhook makes them (no `:`; never all digits). */
export const jobId = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,200}$/, 'a job id: letters, digits, dot, dash, underscore')
  .describe('a job id');

const fullSha = z
  .string()
  .regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, 'a full commit sha: 40 (or 64) lowercase hex digits');
const shaPrefix = z
  .string()
  .regex(/^[0-9a-f]{7,64}$/, 'a commit sha or a prefix of it: 7 to 64 lowercase hex digits');
const gitRef = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9._/@+-]+$/, 'a branch or tag name: letters, digits and . _ / @ + -');

export const deployRequest = z
  .strictObject({
    sha: fullSha
      .optional()
      .describe('deploy this commit; its newest successful pipeline is looked up in GitLab'),
    ref: gitRef
      .optional()
      .describe(
        "deploy the newest successful pipeline of this branch or tag; it must be one of the target's refs",
      ),
    force: z
      .boolean()
      .optional()
      .describe(
        'deploy even when the target runs this sha already, or a newer pipeline was accepted',
      ),
  })
  .superRefine((b, ctx) => {
    if ((b.sha === undefined) === (b.ref === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'give exactly one of sha and ref' });
    }
  })
  // JSON Schema cannot see the refinement; this says the same.
  .meta({ oneOf: [{ required: ['sha'] }, { required: ['ref'] }] });
requestSchemas.add(deployRequest, { id: 'DeployRequest' });
export type DeployRequest = z.infer<typeof deployRequest>;

export const rollbackRequest = z.strictObject({
  to: shaPrefix
    .optional()
    .describe(
      'the release to return to (a sha or its prefix); default: the release before the one that runs',
    ),
});
requestSchemas.add(rollbackRequest, { id: 'RollbackRequest' });
export type RollbackRequest = z.infer<typeof rollbackRequest>;

export const pageQuery = z.object({
  offset: z.coerce
    .number()
    .int()
    .min(0)
    .max(100_000)
    .default(0)
    .describe('entries to skip, newest first'),
  limit: z.coerce.number().int().min(1).max(100).default(20).describe('entries per page'),
});

// ---- responses ----

export const stepView = z.object({
  name: z.string(),
  status: z.enum(['done', 'skipped', 'failed']),
  ms: z.number().nonnegative(),
  detail: z.string().nullable(),
});
responseSchemas.add(stepView, { id: 'Step' });

export const releaseView = z.object({
  sha: z.string(),
  ref: z.string(),
  pipelineId: z.number().int().nonnegative(),
  digest: z.string().nullable().describe('the digest the release tag resolved to'),
  images: z.record(z.string(), z.string()).describe('container -> image as set on the Deployment'),
  since: z.string().describe('when it went live (ISO 8601)'),
  by: z.string().describe('the GitLab user, API token or trigger that deployed it'),
  jobId: z.string(),
});
responseSchemas.add(releaseView, { id: 'Release' });

export const deploymentView = z.object({
  jobId: z.string(),
  kind: z.enum(['deploy', 'rollback']),
  sha: z.string(),
  ref: z.string(),
  pipelineId: z.number().int().nonnegative(),
  outcome: z.enum(['success', 'failed', 'rolled-back', 'superseded', 'skipped']),
  reason: z.string().nullable(),
  by: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  steps: z.array(stepView),
});
responseSchemas.add(deploymentView, { id: 'Deployment' });

export const targetView = z.object({
  name: z.string(),
  environment: z.object({ name: z.string(), tier: z.string() }),
  current: releaseView.nullable().describe('what runs now, as far as rollhook deployed it'),
  lastDeploy: deploymentView.nullable().describe("the last deploy or rollback's outcome"),
  lastSuccessAt: z.string().nullable(),
});
responseSchemas.add(targetView, { id: 'Target' });

export const targetList = z.object({ items: z.array(targetView) });
responseSchemas.add(targetList, { id: 'TargetList' });

export const deploymentPage = z.object({
  items: z.array(deploymentView),
  total: z.number().int().nonnegative(),
  offset: z.number().int().nonnegative(),
  limit: z.number().int().positive(),
});
responseSchemas.add(deploymentPage, { id: 'DeploymentPage' });

export const deployAccepted = z.object({
  jobId: z.string(),
  target: z.string(),
  sha: z.string(),
  ref: z.string(),
  pipelineId: z.number().int().positive(),
  force: z.boolean(),
  status: z.literal('queued'),
});
responseSchemas.add(deployAccepted, { id: 'DeployAccepted' });

export const rollbackAccepted = z.object({
  jobId: z.string(),
  target: z.string(),
  toSha: z.string(),
  toRef: z.string(),
  status: z.literal('queued'),
});
responseSchemas.add(rollbackAccepted, { id: 'RollbackAccepted' });

export const JOB_STATES = [
  'waiting',
  'active',
  'delayed',
  'prioritized',
  'waiting-children',
  'completed',
  'failed',
  'unknown',
] as const;

export const jobView = z.object({
  id: z.string(),
  queue: z.enum(['deploy', 'cleanup-ci']),
  kind: z.enum(['deploy', 'rollback', 'cleanup-ci']),
  target: z.string(),
  state: z.enum(JOB_STATES),
  step: z.string().nullable().describe('the step running now, or the last one reported'),
  progress: z
    .record(z.string(), z.unknown())
    .nullable()
    .describe('what the running step last reported'),
  steps: z
    .array(
      z.object({
        name: z.string(),
        status: z.enum(['done', 'skipped', 'failed']),
        ms: z.number().nonnegative(),
        at: z.string(),
        detail: z.string().nullable(),
      }),
    )
    .describe('finished steps, in the order they ended'),
  attemptsMade: z.number().int().nonnegative(),
  attempts: z.number().int().nonnegative(),
  result: z.object({ outcome: z.string(), reason: z.string().nullable() }).nullable(),
  error: z.string().nullable(),
  sha: z.string().nullable(),
  ref: z.string().nullable(),
  pipelineId: z.number().int().nullable(),
  by: z.string().nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});
responseSchemas.add(jobView, { id: 'Job' });

export const problem = z.looseObject({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  jobId: z.string().optional(),
});
responseSchemas.add(problem, { id: 'Problem' });

export type TargetView = z.infer<typeof targetView>;
export type DeploymentView = z.infer<typeof deploymentView>;
export type ReleaseView = z.infer<typeof releaseView>;
export type JobView = z.infer<typeof jobView>;
