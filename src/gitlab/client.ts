/**
 * What rollhook tells GitLab and asks it: environments, deployments, commit statuses, and
 * which pipeline of a ref or sha succeeded. Over @gitbeaker/rest.
 *
 * Every operation is safe to repeat, so each one retries GitLabUnavailableError itself
 * (configurable; `retry: { attempts: 1 }` turns it off) and a caller gets one outcome per
 * call: done, or a typed error that says whether trying later can help.
 *
 * rollhook's requests carry only the token and a content type: nothing from an incoming
 * webhook (in particular never X-Gitlab-Event-UUID, which makes GitLab treat the hooks our
 * calls fire as recursive).
 */
import { Commits, Deployments, Environments, Pipelines } from '@gitbeaker/rest';
import type { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { logger, registerSecret } from '../log.ts';
import {
  GitLabRequestError,
  GitLabResponseError,
  toGitLabError,
  type GitLabOperation,
} from './errors.ts';
import {
  commitStatusSchema,
  deploymentListSchema,
  deploymentSchema,
  environmentListSchema,
  environmentSchema,
  pipelineDetailSchema,
  pipelineListSchema,
  type EnvironmentTier,
} from './responses.ts';
import { withRetry, type RetryOptions } from './retry.ts';

/** A numeric project id, or its path `group/project` (gitbeaker URL-encodes it). */
export type ProjectRef = number | string;
export type DeploymentStatus = 'running' | 'success' | 'failed' | 'canceled';
export type CommitState = 'pending' | 'running' | 'success' | 'failed' | 'canceled';
export type { EnvironmentTier };

export interface EnvironmentResult {
  id: number;
  name: string;
  tier: EnvironmentTier | undefined;
  /** created by this call */
  created: boolean;
  /** tier or external URL changed by this call */
  updated: boolean;
}

export interface DeploymentResult {
  id: number;
  /** an earlier attempt's running deployment of the same sha and ref, taken over */
  reused: boolean;
}

export interface PipelineSummary {
  id: number;
  sha: string;
  ref: string;
  /** `push`, `web`, … `external` for pipelines made by commit statuses */
  source: string | undefined;
  /** the ref is a tag (GitLab deployments need to know) */
  tag: boolean;
}

export interface GitLabClient {
  ensureEnvironment(
    project: ProjectRef,
    env: { name: string; tier: EnvironmentTier; externalUrl?: string },
  ): Promise<EnvironmentResult>;
  createDeployment(
    project: ProjectRef,
    d: { environment: string; sha: string; ref: string; tag: boolean; status?: 'running' },
  ): Promise<DeploymentResult>;
  updateDeployment(
    project: ProjectRef,
    id: number,
    status: 'success' | 'failed' | 'canceled',
  ): Promise<{ changed: boolean }>;
  setCommitStatus(
    project: ProjectRef,
    sha: string,
    state: CommitState,
    opts: {
      name: string;
      targetUrl?: string;
      description?: string;
      pipelineId?: number;
      ref?: string;
    },
  ): Promise<{ changed: boolean }>;
  latestSuccessfulPipeline(project: ProjectRef, ref: string): Promise<PipelineSummary | null>;
  successfulPipelineForSha(project: ProjectRef, sha: string): Promise<PipelineSummary | null>;
}

export interface GitLabClientOptions {
  retry?: Partial<Pick<RetryOptions, 'attempts' | 'baseMs' | 'maxMs'>>;
  /** per request; gitbeaker's own default is 5 minutes, far longer than a report is worth */
  timeoutMs?: number;
}

const DEFAULT_RETRY = { attempts: 3, baseMs: 500, maxMs: 10_000 };
const DEFAULT_TIMEOUT_MS = 10_000;
/** GitLab's limit for a commit status description */
const DESCRIPTION_MAX = 255;

/** gitbeaker appends /api/v4 itself: accept a base URL given with or without it. */
function gitlabHost(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/api\/v4$/, '');
}

export function createGitLabClient(
  config: Config['gitlab'],
  options: GitLabClientOptions = {},
): GitLabClient {
  registerSecret(config.token);
  const resource = {
    host: gitlabHost(config.url),
    token: config.token,
    queryTimeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  };
  // one resource class each, not `new Gitlab()`, which builds ~200 of them with rate limiters
  const deployments = new Deployments(resource);
  const environments = new Environments(resource);
  const commits = new Commits(resource);
  const pipelines = new Pipelines(resource);
  // The newest successful pipeline matching the filter: one list request for one item.
  const newestSuccessful = (
    op: GitLabOperation & { project: ProjectRef },
    filter: { ref: string } | { sha: string },
  ): Promise<PipelineSummary | null> =>
    run(op, async () => {
      const list = parse(
        op,
        pipelineListSchema,
        await pipelines.all(op.project, {
          ...filter,
          status: 'success',
          orderBy: 'id',
          sort: 'desc',
          perPage: 1,
          maxPages: 1,
        }),
      );
      const p = list[0];
      return p ? summary(op, p) : null;
    });
  // The list entity lacks `tag`; the single pipeline has it.
  const summary = async (
    op: GitLabOperation,
    p: { id: number; sha: string; ref: string; source?: string | undefined },
  ): Promise<PipelineSummary> => {
    const detail = parse(op, pipelineDetailSchema, await pipelines.show(op.project, p.id));
    return { id: p.id, sha: p.sha, ref: p.ref, source: p.source, tag: detail.tag };
  };
  const retry = { ...DEFAULT_RETRY, ...options.retry };

  /** Runs one operation with retries; whatever escapes is a typed GitLab error (or a bug). */
  async function run<T>(op: GitLabOperation, fn: () => Promise<T>): Promise<T> {
    return withRetry(
      async () => {
        try {
          return await fn();
        } catch (err) {
          throw toGitLabError(err, op, config.token);
        }
      },
      {
        ...retry,
        onRetry: (err, attempt, delayMs) =>
          logger.warn('gitlab call failed, retrying', {
            operation: op.operation,
            project: op.project,
            attempt,
            delayMs,
            error: err instanceof Error ? err.message : String(err),
          }),
      },
    );
  }

  function parse<S extends z.ZodType>(op: GitLabOperation, schema: S, body: unknown): z.infer<S> {
    const r = schema.safeParse(body);
    if (!r.success)
      throw new GitLabResponseError(
        op,
        r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '),
      );
    return r.data;
  }

  async function findEnvironment(
    op: GitLabOperation,
    project: ProjectRef,
    name: string,
  ): Promise<z.infer<typeof environmentSchema> | undefined> {
    // `name` is an exact match on GitLab's side; the filter here guards against older ones that ignore it
    const list = parse(
      op,
      environmentListSchema,
      await environments.all(project, { name, perPage: 20, maxPages: 1 }),
    );
    return list.find((e) => e.name === name);
  }

  const isTransitionRefusal = (err: unknown, pattern: RegExp): boolean =>
    err instanceof GitLabRequestError && err.status === 400 && pattern.test(err.gitlabMessage);

  return {
    ensureEnvironment(project, env) {
      const op = { operation: 'ensureEnvironment', project };
      return run(op, async () => {
        let found = await findEnvironment(op, project, env.name);
        let created = false;
        if (!found) {
          try {
            found = parse(
              op,
              environmentSchema,
              await environments.create(project, env.name, {
                tier: env.tier,
                ...(env.externalUrl ? { externalUrl: env.externalUrl } : {}),
              }),
            );
            created = true;
          } catch (err) {
            // another worker created it between our list and our create: that is done too
            const e = toGitLabError(err, op, config.token);
            if (!isTransitionRefusal(e, /has already been taken/)) throw e;
            found = await findEnvironment(op, project, env.name);
            if (!found) throw e;
          }
        }
        const wrongTier = found.tier !== undefined && found.tier !== env.tier;
        const wrongUrl =
          env.externalUrl !== undefined && (found.external_url ?? undefined) !== env.externalUrl;
        if (!created && (wrongTier || wrongUrl)) {
          // an environment GitLab made on the first deployment gets a tier guessed from its name
          found = parse(
            op,
            environmentSchema,
            await environments.edit(project, found.id, {
              ...(wrongTier ? { tier: env.tier } : {}),
              ...(wrongUrl ? { externalUrl: env.externalUrl } : {}),
            }),
          );
          logger.info('gitlab environment updated', {
            project: String(project),
            environment: env.name,
            tier: env.tier,
          });
          return { id: found.id, name: found.name, tier: found.tier, created, updated: true };
        }
        return { id: found.id, name: found.name, tier: found.tier, created, updated: false };
      });
    },

    createDeployment(project, d) {
      const op = { operation: 'createDeployment', project };
      const status = d.status ?? 'running';
      return run(op, async () => {
        // a job retried after a crash must not leave its first deployment running forever
        const running = parse(
          op,
          deploymentListSchema,
          await deployments.all(project, {
            environment: d.environment,
            status: 'running',
            orderBy: 'id',
            sort: 'desc',
            perPage: 20,
            maxPages: 1,
          }),
        );
        const same = running.find((x) => x.sha === d.sha && x.ref === d.ref);
        if (same) return { id: same.id, reused: true };
        const created = parse(
          op,
          deploymentSchema,
          await deployments.create(project, d.environment, d.sha, d.ref, d.tag, { status }),
        );
        return { id: created.id, reused: false };
      });
    },

    updateDeployment(project, id, status) {
      const op = { operation: 'updateDeployment', project };
      return run(op, async () => {
        try {
          parse(op, deploymentSchema, await deployments.edit(project, id, status));
          return { changed: true };
        } catch (err) {
          const e = toGitLabError(err, op, config.token);
          // GitLab refuses success -> success: fine when an earlier attempt already set it
          if (!isTransitionRefusal(e, /cannot transition via/i)) throw e;
          const current = parse(op, deploymentSchema, await deployments.show(project, id));
          if (current.status === status) return { changed: false };
          throw e;
        }
      });
    },

    setCommitStatus(project, sha, state, opts) {
      const op = { operation: 'setCommitStatus', project };
      const description =
        opts.description !== undefined && opts.description.length > DESCRIPTION_MAX
          ? `${opts.description.slice(0, DESCRIPTION_MAX - 1)}…`
          : opts.description;
      return run(op, async () => {
        try {
          parse(
            op,
            commitStatusSchema,
            await commits.editStatus(project, sha, state, {
              name: opts.name,
              ...(opts.ref !== undefined ? { ref: opts.ref } : {}),
              ...(opts.targetUrl !== undefined ? { targetUrl: opts.targetUrl } : {}),
              ...(description !== undefined ? { description } : {}),
              ...(opts.pipelineId !== undefined ? { pipelineId: opts.pipelineId } : {}),
            }),
          );
          return { changed: true };
        } catch (err) {
          const e = toGitLabError(err, op, config.token);
          // re-posting a pending or running state is refused with 400: it is already set
          if (isTransitionRefusal(e, /Cannot transition status via/)) return { changed: false };
          throw e;
        }
      });
    },

    latestSuccessfulPipeline(project, ref) {
      return newestSuccessful({ operation: 'latestSuccessfulPipeline', project }, { ref });
    },

    successfulPipelineForSha(project, sha) {
      return newestSuccessful({ operation: 'successfulPipelineForSha', project }, { sha });
    },
  };
}
