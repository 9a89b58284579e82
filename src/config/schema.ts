import { z } from 'zod';

/** A duration as milliseconds: a number, or a string like `500ms`, `30s`, `10m`, `1h`. */
export const duration = z.union([
  z.number().int().nonnegative(),
  z
    .string()
    .regex(/^\d+(ms|s|m|h)$/, 'a duration like 500ms, 30s, 10m or 1h')
    .transform((s) => {
      const m = /^(\d+)(ms|s|m|h)$/.exec(s);
      const n = Number(m?.[1]);
      const unit = m?.[2];
      return n * (unit === 'h' ? 3_600_000 : unit === 'm' ? 60_000 : unit === 's' ? 1000 : 1);
    }),
]);

const byteSize = z.union([
  z.number().int().positive(),
  z
    .string()
    .regex(/^\d+(b|kb|mb)$/i, 'a size like 512kb or 5mb')
    .transform((s) => {
      const m = /^(\d+)(b|kb|mb)$/i.exec(s);
      const n = Number(m?.[1]);
      const unit = m?.[2]?.toLowerCase();
      return n * (unit === 'mb' ? 1024 * 1024 : unit === 'kb' ? 1024 : 1);
    }),
]);

const sha256Hex = z.string().regex(/^[a-f0-9]{64}$/, 'a lowercase hex sha256');

/** An image repository: `host[:port]/path`, no tag or digest. */
export const imageRepository = z
  .string()
  .regex(
    /^[a-z0-9.-]+(:\d+)?\/[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/,
    'an image repository like registry.example.com/group/app (host and path, no tag)',
  );

/** GitLab pipeline sources (`object_attributes.source`). */
export const pipelineSource = z.enum([
  'push',
  'web',
  'trigger',
  'schedule',
  'api',
  'external',
  'pipeline',
  'chat',
  'webide',
  'merge_request_event',
  'external_pull_request_event',
  'parent_pipeline',
  'ondemand_dast_scan',
  'ondemand_dast_validation',
  'security_orchestration_policy',
  'container_registry_push',
  'duo_workflow',
  'pipeline_execution_policy_schedule',
]);
export type PipelineSource = z.infer<typeof pipelineSource>;

/** Branch and tag pipelines; not merge-request pipelines and not `external` (our own statuses). */
export const DEFAULT_SOURCES: PipelineSource[] = [
  'push',
  'web',
  'api',
  'schedule',
  'trigger',
  'pipeline',
];

const targetName = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    'lowercase letters, digits and dashes (a DNS label)',
  );

export const targetSchema = z
  .strictObject({
    name: targetName,
    gitlab: z.strictObject({
      /** Numeric project id, or its path `group/project`. */
      project: z.union([
        z.number().int().positive(),
        z.string().regex(/^[\w.-]+(\/[\w.-]+)+$/, 'group/project'),
      ]),
      webhookSecret: z.string().min(8, 'at least 8 characters'),
      /** Standard Webhooks signing secret (`whsec_…`); when set, signatures are required. */
      signingSecret: z.string().startsWith('whsec_').optional(),
      /** Exact ref names or globs (`release/*`, `v*`). */
      refs: z.array(z.string().min(1)).min(1).default(['main', 'master']),
      sources: z.array(pipelineSource).min(1).default(DEFAULT_SOURCES),
    }),
    environment: z
      .strictObject({
        name: z.string().min(1).default('production'),
        tier: z
          .enum(['production', 'staging', 'testing', 'development', 'other'])
          .default('production'),
        url: z.url().optional(),
      })
      .default({ name: 'production', tier: 'production' }),
    kubernetes: z.strictObject({
      /** kubeconfig context; the default chain (in-cluster, KUBECONFIG, ~/.kube/config) otherwise. */
      context: z.string().min(1).optional(),
      namespace: targetName,
      deployment: z.string().min(1),
      /** container name -> image repository */
      containers: z
        .record(z.string().min(1), imageRepository)
        .refine((c) => Object.keys(c).length > 0, {
          message: 'name at least one container',
        }),
      pinDigest: z.boolean().default(false),
    }),
    images: z
      .strictObject({
        tag: z.string().includes('{sha}', { message: 'must contain {sha}' }).default('prod-{sha}'),
        promoteTo: z.string().min(1).default('prod'),
        deleteSuperseded: z.boolean().default(true),
        /** extra prod-* releases kept for rollback */
        keepReleases: z.number().int().nonnegative().default(0),
        deleteOnFailure: z.boolean().default(true),
        /** wait this long for `tag` to appear in the registry before failing */
        waitForImage: duration.default(120_000),
        /** CI image tags removed when the pipeline ends, e.g. `ci-{sha}` */
        ciTags: z.array(z.string().min(1)).default([]),
        ciRepository: imageRepository.optional(),
      })
      .default({
        tag: 'prod-{sha}',
        promoteTo: 'prod',
        deleteSuperseded: true,
        keepReleases: 0,
        deleteOnFailure: true,
        waitForImage: 120_000,
        ciTags: [],
      }),
    rollout: z
      .strictObject({
        timeout: duration.default(600_000),
        rollbackOnFailure: z.boolean().default(true),
      })
      .default({ timeout: 600_000, rollbackOnFailure: true }),
    /** post a commit status `rollhook/<name>` on the deployed sha */
    commitStatus: z.boolean().default(false),
  })
  .superRefine((t, ctx) => {
    if (t.images.ciTags.length > 0 && !t.images.ciRepository) {
      ctx.addIssue({
        code: 'custom',
        path: ['images', 'ciRepository'],
        message: 'required when images.ciTags is set',
      });
    }
  });

export const registryCredentialsSchema = z.strictObject({
  /** `host[:port]` as it appears in image references */
  host: z.string().regex(/^[a-z0-9.-]+(:\d+)?$/, 'host or host:port'),
  /** base URL when it differs from https://host (e.g. http://127.0.0.1:5000 in tests) */
  url: z.url().optional(),
  username: z.string().min(1).optional(),
  password: z.string().min(1).optional(),
  protectedTags: z.array(z.string().min(1)).default(['prod', 'latest', 'v*']),
});

export const apiTokenSchema = z.strictObject({
  name: z.string().min(1),
  sha256: sha256Hex,
  targets: z.array(z.string().min(1)).min(1).default(['*']),
  actions: z
    .array(z.enum(['read', 'deploy', 'rollback']))
    .min(1)
    .default(['read']),
});

export const configSchema = z
  .strictObject({
    server: z
      .strictObject({
        port: z.number().int().min(0).max(65535).default(8080),
        host: z.string().default('0.0.0.0'),
        bodyLimit: byteSize.default(5 * 1024 * 1024),
        /** public base URL, used for links in GitLab (commit status target_url) */
        publicUrl: z.url().optional(),
        shutdownTimeout: duration.default(30_000),
      })
      .default({
        port: 8080,
        host: '0.0.0.0',
        bodyLimit: 5 * 1024 * 1024,
        shutdownTimeout: 30_000,
      }),
    redis: z.strictObject({
      url: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL'),
      prefix: z.string().min(1).default('rollhook'),
    }),
    gitlab: z.strictObject({
      url: z.url(),
      token: z.string().min(1),
    }),
    registries: z.array(registryCredentialsSchema).default([]),
    api: z.strictObject({ tokens: z.array(apiTokenSchema).default([]) }).default({ tokens: [] }),
    dashboard: z
      .strictObject({
        users: z
          .array(
            z.strictObject({
              name: z.string().min(1),
              passwordSha256: sha256Hex,
              /** a viewer: sees the queues but cannot retry, promote or remove jobs */
              readOnly: z.boolean().optional(),
            }),
          )
          .default([]),
        readOnly: z.boolean().default(false),
      })
      .default({ users: [], readOnly: false }),
    metrics: z
      .strictObject({
        token: z.string().min(1).optional(),
        /** role worker only: its own /metrics listens here (role all and api serve it on server.port); 0 = any free port */
        port: z.number().int().min(0).max(65535).default(9464),
      })
      .default({ port: 9464 }),
    worker: z
      .strictObject({
        concurrency: z.number().int().positive().default(4),
        /** how long a per-target lock lives without renewal */
        lockTtl: duration.default(30_000),
      })
      .default({ concurrency: 4, lockTtl: 30_000 }),
    targets: z.array(targetSchema).min(1, 'configure at least one target'),
  })
  .superRefine((c, ctx) => {
    const seen = new Map<string, number>();
    c.targets.forEach((t, i) => {
      const prev = seen.get(t.name);
      if (prev !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['targets', i, 'name'],
          message: `duplicate of targets.${prev}.name`,
        });
      }
      seen.set(t.name, i);
    });
  });

export type Config = z.infer<typeof configSchema>;
export type Target = z.infer<typeof targetSchema>;
export type RegistryCredentials = z.infer<typeof registryCredentialsSchema>;
export type ApiToken = z.infer<typeof apiTokenSchema>;
