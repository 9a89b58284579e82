/**
 * A whole rollhook (role all: API, dashboard, metrics and workers on real Redis) for the
 * operator-surface tests, wired by run() as in production except for the deploy and rollback
 * steps, which are replaced by test steps that take time and report progress the way the
 * real ones do (a watch step with replica counts), and record releases and history.
 *
 * GitLab is the contract server; the registry is the real one from global setup.
 * A deploy of a sha starting with `dead` ends with outcome `failed`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Config } from '../../src/config/schema.ts';
import { run } from '../../src/main.ts';
import { openQueues, type Queues } from '../../src/queue/queues.ts';
import { TargetState, type HistoryEntry } from '../../src/targets/state.ts';
import type { JobResult, RunContext } from '../../workers/deploy/processor.ts';
import type { DeployJobData, RollbackJobData } from '../../src/queue/jobs.ts';
import { testConfig } from './config.ts';
import { startGitLabContract, type GitLabContract } from './gitlab-contract.ts';
import { freePort } from './processes.ts';
import { pushRandomImage, uniqueRepo } from './registry.ts';

export const GITLAB_TOKEN = 'glpat-operator-stack';

export interface StackTokens {
  /** every action on every target */
  ops: string;
  /** read only, every target */
  reader: string;
  /** read and deploy, target app only */
  appDeployer: string;
  /** rollback only (no read), every target */
  rollbacker: string;
}

export interface OperatorStack {
  url: string;
  config: Config;
  tokens: StackTokens;
  /** dashboard users: admin and viewer, password per user */
  dashboard: {
    admin: { name: string; password: string };
    viewer: { name: string; password: string };
  };
  metricsToken: string;
  contract: GitLabContract;
  redis: Redis;
  state: TargetState;
  queues: Queues;
  /** image repository of target app's container */
  appRepo: string;
  registry: { url: string; creds: { username: string; password: string } };
  /** a successful pipeline of `ref` for a fresh sha, known to the contract server */
  pipeline(opts?: { ref?: string; sha?: string; status?: 'success' | 'failed' }): {
    id: number;
    sha: string;
    ref: string;
  };
  /** pushes `prod-<sha>` to app's repository */
  pushRelease(sha: string): Promise<string>;
  /** from now on, deploys stop in their watch step at 2 of 3 replicas until release() */
  hold(): void;
  release(): void;
  stop(): Promise<void>;
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startOperatorStack(opts: {
  redisUrl: string;
  registry: { url: string; host: string; users: { admin: { username: string; password: string } } };
  /** time of each test step; the watch step takes 3 of them */
  stepMs?: number;
}): Promise<OperatorStack> {
  const stepMs = opts.stepMs ?? 100;
  let held: Promise<void> = Promise.resolve();
  let releaseHeld = (): void => undefined;
  const secret = (): string => randomBytes(16).toString('hex');
  const tokens: StackTokens = {
    ops: secret(),
    reader: secret(),
    appDeployer: secret(),
    rollbacker: secret(),
  };
  const dashboard = {
    admin: { name: 'ops', password: secret() },
    viewer: { name: 'viewer', password: secret() },
  };
  const metricsToken = secret();
  const appRepo = `${opts.registry.host}/${uniqueRepo('group/app')}`;
  const creds = opts.registry.users.admin;

  const contract = await startGitLabContract({
    token: GITLAB_TOKEN,
    projects: [
      { id: 1, path_with_namespace: 'group/app', refs: ['main', 'feature/x', 'release/1'] },
      { id: 2, path_with_namespace: 'group/other', refs: ['main'] },
    ],
  });
  const port = await freePort();
  const config = testConfig({
    redisUrl: opts.redisUrl,
    server: { port, host: '127.0.0.1' },
    gitlab: { url: contract.url, token: GITLAB_TOKEN },
    registries: [
      {
        host: opts.registry.host,
        url: opts.registry.url,
        username: creds.username,
        password: creds.password,
      },
    ],
    api: {
      tokens: [
        {
          name: 'ops',
          sha256: sha256(tokens.ops),
          targets: ['*'],
          actions: ['read', 'deploy', 'rollback'],
        },
        { name: 'reader', sha256: sha256(tokens.reader), targets: ['*'], actions: ['read'] },
        {
          name: 'app-deployer',
          sha256: sha256(tokens.appDeployer),
          targets: ['app'],
          actions: ['read', 'deploy'],
        },
        {
          name: 'rollbacker',
          sha256: sha256(tokens.rollbacker),
          targets: ['*'],
          actions: ['rollback'],
        },
      ],
    },
    dashboard: {
      users: [
        { name: dashboard.admin.name, passwordSha256: sha256(dashboard.admin.password) },
        {
          name: dashboard.viewer.name,
          passwordSha256: sha256(dashboard.viewer.password),
          readOnly: true,
        },
      ],
      readOnly: false,
    },
    metrics: { token: metricsToken },
    worker: { concurrency: 2, lockTtl: 5000 },
    targets: [
      {
        name: 'app',
        gitlab: {
          project: 'group/app',
          webhookSecret: 'hook-secret-app',
          refs: ['main', 'release/*'],
        },
        kubernetes: { namespace: 'prod', deployment: 'app', containers: { app: appRepo } },
      },
      {
        name: 'other',
        gitlab: { project: 2, webhookSecret: 'hook-secret-other', refs: ['main'] },
        kubernetes: {
          namespace: 'other',
          deployment: 'other',
          containers: { other: `${opts.registry.host}/${uniqueRepo('group/other')}` },
        },
      },
    ],
  });

  const redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  const state = new TargetState(redis, config.redis.prefix);
  const queues = openQueues(
    { url: opts.redisUrl, maxRetriesPerRequest: null },
    config.redis.prefix,
  );

  const history = (
    ctx: RunContext<DeployJobData> | RunContext<RollbackJobData>,
    e: Pick<HistoryEntry, 'kind' | 'sha' | 'ref' | 'pipelineId' | 'outcome'> & { reason?: string },
    startedAt: string,
  ): HistoryEntry => ({
    jobId: ctx.job.id ?? '',
    by: ctx.data.trigger.user ?? ctx.data.trigger.kind,
    startedAt,
    finishedAt: new Date().toISOString(),
    steps: ctx.steps.list(),
    ...e,
  });

  const service = await run(config, 'all', {
    deploy: async (ctx): Promise<JobResult> => {
      const startedAt = new Date().toISOString();
      const d = ctx.data;
      await ctx.steps.run('resolve', () => sleep(stepMs));
      await ctx.steps.run('patch', () => sleep(stepMs));
      await ctx.steps.run('watch', async () => {
        for (let updated = 1; updated <= 3; updated++) {
          await ctx.steps.progress({
            step: 'watch',
            message: `${updated} of 3 updated replicas are available`,
            desired: 3,
            updated,
            ready: updated,
            available: updated,
          });
          await sleep(stepMs);
          // a held rollout stays at 2 of 3 until the test releases it: seen while running,
          // however slow the machine
          if (updated === 2) await held;
        }
      });
      if (d.sha.startsWith('dead')) {
        const reason = 'rollout ProgressDeadlineExceeded (test): not rolled back';
        await state.recordOutcome(
          ctx.target.name,
          history(
            ctx,
            {
              kind: 'deploy',
              sha: d.sha,
              ref: d.ref,
              pipelineId: d.pipelineId,
              outcome: 'failed',
              reason,
            },
            startedAt,
          ),
        );
        return { outcome: 'failed', reason, sha: d.sha };
      }
      await ctx.steps.run('promote', () => sleep(stepMs));
      const images = Object.fromEntries(
        Object.entries(ctx.target.kubernetes.containers).map(([c, repo]) => [
          c,
          `${repo}:prod-${d.sha}`,
        ]),
      );
      await state.recordRelease(
        ctx.target.name,
        {
          sha: d.sha,
          ref: d.ref,
          pipelineId: d.pipelineId,
          images,
          deployedAt: new Date().toISOString(),
          jobId: ctx.job.id ?? '',
          by: d.trigger.user ?? d.trigger.kind,
        },
        history(
          ctx,
          { kind: 'deploy', sha: d.sha, ref: d.ref, pipelineId: d.pipelineId, outcome: 'success' },
          startedAt,
        ),
      );
      return { outcome: 'success', sha: d.sha };
    },
    rollback: async (ctx): Promise<JobResult> => {
      const startedAt = new Date().toISOString();
      const release = (await state.releases(ctx.target.name)).find((r) => r.sha === ctx.data.toSha);
      if (!release) return { outcome: 'skipped', reason: `no release ${ctx.data.toSha}` };
      await ctx.steps.run('patch', () => sleep(stepMs));
      await ctx.steps.run('watch', async () => {
        await ctx.steps.progress({
          step: 'watch',
          message: '1 of 1 updated replicas are available',
          desired: 1,
          updated: 1,
        });
        await sleep(stepMs);
      });
      const by = ctx.data.trigger.user ?? ctx.data.trigger.kind;
      await state.recordRelease(
        ctx.target.name,
        { ...release, deployedAt: new Date().toISOString(), jobId: ctx.job.id ?? '', by },
        history(
          ctx,
          {
            kind: 'rollback',
            sha: release.sha,
            ref: release.ref,
            pipelineId: release.pipelineId,
            outcome: 'success',
          },
          startedAt,
        ),
      );
      return { outcome: 'success', sha: release.sha };
    },
  });

  const randomSha = (): string => randomBytes(20).toString('hex');
  return {
    url: `http://127.0.0.1:${port}`,
    config,
    tokens,
    dashboard,
    metricsToken,
    contract,
    redis,
    state,
    queues,
    appRepo,
    registry: { url: opts.registry.url, creds },
    pipeline(p = {}) {
      const sha = p.sha ?? randomSha();
      const ref = p.ref ?? 'main';
      const view = contract.addPipeline('group/app', {
        sha,
        ref,
        status: p.status ?? 'success',
        source: 'push',
      });
      return { id: view.id, sha, ref };
    },
    hold() {
      held = new Promise<void>((r) => (releaseHeld = r));
    },
    release() {
      releaseHeld();
      held = Promise.resolve();
    },
    async pushRelease(sha) {
      const repo = appRepo.slice(opts.registry.host.length + 1);
      return pushRandomImage(opts.registry.url, creds, repo, `prod-${sha}`);
    },
    async stop() {
      releaseHeld();
      await service.stop();
      await queues.close();
      await redis.quit();
      await contract.stop();
    },
  };
}
