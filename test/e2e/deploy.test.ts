import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { deployJobSchema } from '../../src/queue/jobs.ts';
import type { Queues } from '../../src/queue/queues.ts';
import { adminClients, createTestNamespace, testDeployment } from '../support/cluster.ts';
import {
  SUCCESS_STEPS,
  queuesFor,
  postWebhook,
  startRollhook,
  waitForJob,
  writeConfig,
} from '../support/e2e.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { startGitLabContract, type GitLabContract } from '../support/gitlab-contract.ts';
import { pipelineHook, randomSha } from '../support/payloads.ts';
import { freePort } from '../support/processes.ts';
import { listTags, pushRandomImage, resolve, tagImage, uniqueRepo } from '../support/registry.ts';
import type { RollhookProcess } from '../support/spawn-rollhook.ts';

/*
 * rollhook started as `npm start` starts it, against real Redis, the real registry and the
 * real control plane, with GitLab played by the contract server. Each scenario has its own
 * target (project, namespace, Deployment, repository), so they share one rollhook process.
 */

const GITLAB_TOKEN = `glpat-${randomBytes(8).toString('hex')}`;
const HOOK_SECRET = `hook-${randomBytes(8).toString('hex')}`;

interface Scenario {
  name: string;
  projectId: number;
  path: string;
  namespace: string;
  repo: string;
  /** shas whose prod-<sha> image exists, oldest first; the first runs at the start */
  shas: string[];
  digests: Record<string, string>;
  commitStatus?: boolean;
}

let redisUrl: string;
let registry: ReturnType<typeof inject<'registry'>>;
let cluster: ReturnType<typeof inject<'cluster'>>;
let contract: GitLabContract;
let proxy: FaultProxy;
let rollhook: RollhookProcess;
let url: string;
let queues: Queues;
const prefix = `e2e${randomBytes(3).toString('hex')}`;
const scenarios: Record<string, Scenario> = {};
let nextPipeline = 5000;

const names = [
  'success',
  'same',
  'fail',
  'newer',
  'gitlab500',
  'loop',
  'denied',
  'cleanup',
  'keep',
] as const;
const API_TOKEN = `api-${randomBytes(8).toString('hex')}`;

async function prepare(name: string, i: number): Promise<Scenario> {
  const { apps, core } = adminClients(cluster.kubeconfig);
  const namespace = await createTestNamespace(core, `e2e-${name}`);
  const repo = uniqueRepo(`e2e/${name}`);
  const shas = [randomSha(), randomSha(), randomSha()];
  const digests: Record<string, string> = {};
  for (const sha of shas)
    digests[sha] = await pushRandomImage(registry.url, registry.users.admin, repo, `prod-${sha}`);
  const first = shas[0]!;
  await tagImage(registry.url, registry.users.admin, repo, `prod-${first}`, 'prod');
  const image = `${registry.host}/${repo}:prod-${first}`;
  await apps.createNamespacedDeployment({
    namespace,
    body: testDeployment('web', {
      containers: { web: image },
      replicas: 3,
      progressDeadlineSeconds: 8,
    }),
  });
  return {
    name,
    projectId: 100 + i,
    path: `group/${name}`,
    namespace,
    repo,
    shas,
    digests,
    commitStatus: name === 'loop',
  };
}

async function deploymentImage(s: Scenario): Promise<string | undefined> {
  const { apps } = adminClients(cluster.kubeconfig);
  const d = await apps.readNamespacedDeployment({ name: 'web', namespace: s.namespace });
  return d.spec?.template.spec?.containers[0]?.image;
}

function webhook(s: Scenario, sha: string, id = nextPipeline++) {
  return postWebhook(
    url,
    HOOK_SECRET,
    pipelineHook({ id, sha }, { id: s.projectId, path_with_namespace: s.path }),
  );
}

beforeAll(async () => {
  redisUrl = inject('redisUrl');
  registry = inject('registry');
  cluster = inject('cluster');
  proxy = await startFaultProxy(registry.url);
  for (const [i, n] of names.entries()) scenarios[n] = await prepare(n, i);
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  contract = await startGitLabContract({
    token: GITLAB_TOKEN,
    projects: Object.values(scenarios).map((s) => ({
      id: s.projectId,
      path_with_namespace: s.path,
      refs: ['main'],
      commits: s.shas.map((sha) => ({ sha, refs: ['main'] })),
    })),
    webhook: { url: `${url}/webhooks/gitlab`, token: HOOK_SECRET },
  });
  const configFile = writeConfig({
    server: { port, host: '127.0.0.1', publicUrl: url },
    redis: { url: redisUrl, prefix },
    gitlab: { url: contract.url, token: '${E2E_GITLAB_TOKEN}' },
    registries: [
      {
        host: registry.host,
        url: proxy.url,
        username: registry.users.admin.username,
        password: '${E2E_REGISTRY_PASSWORD}',
      },
    ],
    worker: { concurrency: 4, lockTtl: '5s' },
    api: {
      tokens: [
        {
          name: 'ops',
          sha256: createHash('sha256').update(API_TOKEN).digest('hex'),
          actions: ['read', 'deploy', 'rollback'],
        },
      ],
    },
    targets: Object.values(scenarios).map((s) => ({
      name: s.name,
      gitlab: { project: s.path, webhookSecret: '${E2E_HOOK_SECRET}', refs: ['main'] },
      environment: { name: 'production', tier: 'production' },
      kubernetes: {
        namespace: s.namespace,
        deployment: 'web',
        containers: { web: `${registry.host}/${s.repo}` },
        // a token user the cluster grants nothing
        ...(s.name === 'denied' ? { context: cluster.deployerContext } : {}),
      },
      images: {
        waitForImage: '2s',
        ...(s.name === 'cleanup'
          ? { ciTags: ['ci-{sha}'], ciRepository: `${registry.host}/${s.repo}-ci` }
          : {}),
        ...(s.name === 'keep' ? { keepReleases: 1 } : {}),
      },
      rollout: { timeout: '60s' },
      commitStatus: s.commitStatus ?? false,
    })),
  });
  rollhook = await startRollhook(configFile, {
    KUBECONFIG: cluster.kubeconfig,
    E2E_GITLAB_TOKEN: GITLAB_TOKEN,
    E2E_HOOK_SECRET: HOOK_SECRET,
    E2E_REGISTRY_PASSWORD: registry.users.admin.password,
  });
  queues = queuesFor(redisUrl, prefix);
});

afterAll(async () => {
  rollhook?.kill('SIGTERM');
  await rollhook?.exited;
  await queues?.close();
  await contract?.stop();
  await proxy?.stop();
  // No secret reached a log line.
  const out = rollhook?.output() ?? '';
  expect(out).not.toContain(GITLAB_TOKEN);
  expect(out).not.toContain(HOOK_SECRET);
  expect(out).not.toContain(registry.users.admin.password);
});

describe('a green pipeline', () => {
  it('rolls out, promotes prod, deletes the superseded image and reports success to GitLab', async () => {
    const s = scenarios.success!;
    const [old, next] = s.shas as [string, string];
    const res = await webhook(s, next);
    expect(res.status).toBe(202);
    const jobId = (res.body.deploys as { jobId: string }[])[0]!.jobId;
    const job = await waitForJob(queues, jobId, ['completed', 'failed']);
    expect(job.failedReason).toBeUndefined();
    expect(job.returnvalue).toEqual({ outcome: 'success', sha: next });

    expect(await deploymentImage(s)).toBe(`${registry.host}/${s.repo}:prod-${next}`);
    expect(await resolve(registry.url, registry.users.admin, s.repo, 'prod')).toBe(s.digests[next]);
    // The old release's digest is gone, with its tag; the other release is untouched.
    expect(await resolve(registry.url, registry.users.admin, s.repo, s.digests[old]!)).toBeNull();
    const tags = await listTags(registry.url, registry.users.admin, s.repo);
    expect(tags.sort()).toEqual(['prod', `prod-${next}`, `prod-${s.shas[2]}`].sort());

    const data = deployJobSchema.parse(job.data);
    const steps = data.steps ?? {};
    expect(Object.keys(steps)).toEqual(SUCCESS_STEPS);
    for (const st of Object.values(steps)) expect(st.status).toBe('done');
    expect(steps.clean?.result).toMatchObject({
      [`${registry.host}/${s.repo}`]: { superseded: { deleted: true } },
    });

    const deployments = contract.deployments(s.projectId);
    expect(deployments).toHaveLength(1);
    expect(deployments[0]).toMatchObject({ sha: next, ref: 'main', status: 'success' });
    expect(contract.environments(s.projectId)[0]).toMatchObject({
      name: 'production',
      tier: 'production',
    });

    const { apps } = adminClients(cluster.kubeconfig);
    const d = await apps.readNamespacedDeployment({ name: 'web', namespace: s.namespace });
    expect(d.metadata?.annotations?.['kubernetes.io/change-cause']).toContain(
      `sha ${next.slice(0, 12)}`,
    );
  });

  it('skips the delete when prod already has the new digest', async () => {
    const s = scenarios.same!;
    const twin = randomSha();
    // CI pushed the very same image again under the new sha.
    await tagImage(registry.url, registry.users.admin, s.repo, 'prod', `prod-${twin}`);
    const res = await webhook(s, twin);
    const job = await waitForJob(queues, (res.body.deploys as { jobId: string }[])[0]!.jobId, [
      'completed',
      'failed',
    ]);
    expect(job.returnvalue).toMatchObject({ outcome: 'success' });
    const steps = deployJobSchema.parse(job.data).steps ?? {};
    expect(steps.promote?.result).toMatchObject({
      [`${registry.host}/${s.repo}`]: { changed: false },
    });
    expect(steps.clean?.status).toBe('skipped');
    expect(await resolve(registry.url, registry.users.admin, s.repo, 'prod')).toBe(
      s.digests[s.shas[0]!],
    );
    expect((await listTags(registry.url, registry.users.admin, s.repo)).sort()).toEqual(
      ['prod', ...s.shas.map((x) => `prod-${x}`), `prod-${twin}`].sort(),
    );
  });
});

describe('a failed rollout', () => {
  it('rolls back to the recorded images, reports failed, deletes the failed image and leaves prod alone', async () => {
    const s = scenarios.fail!;
    const bad = `deadbeef${randomSha().slice(8)}`; // the kubelet stand-in never readies it
    const badDigest = await pushRandomImage(
      registry.url,
      registry.users.admin,
      s.repo,
      `prod-${bad}`,
    );
    const before = await deploymentImage(s);
    // CI finished a pipeline for it; GitLab delivers the hook.
    contract.addPipeline(s.projectId, {
      id: 7100,
      sha: bad,
      ref: 'main',
      status: 'success',
      source: 'push',
    });
    const job = await waitForJob(queues, 'deploy-fail-7100', ['completed', 'failed']);
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toMatch(
      /^step watch failed: rollout failed \(ProgressDeadlineExceeded\)/,
    );
    expect(job.failedReason).toContain('rollback complete');
    expect(job.attemptsMade).toBe(1); // a failed rollout is not retried

    expect(await deploymentImage(s)).toBe(before);
    expect(await resolve(registry.url, registry.users.admin, s.repo, 'prod')).toBe(
      s.digests[s.shas[0]!],
    );
    expect(await listTags(registry.url, registry.users.admin, s.repo)).not.toContain(`prod-${bad}`);
    expect(badDigest).toMatch(/^sha256:/);
    const steps = deployJobSchema.parse(job.data).steps ?? {};
    expect(Object.keys(steps)).toEqual([
      'guard',
      'resolve',
      'report',
      'patch',
      'watch',
      'rollback',
      'report-failed',
      'delete-failed',
    ]);
    expect(contract.deployments(s.projectId)[0]).toMatchObject({ sha: bad, status: 'failed' });
  });
});

describe('ordering', () => {
  it('a newer pipeline arriving while an older deploy runs waits, then wins', async () => {
    const s = scenarios.newer!;
    const [, a, b] = s.shas as [string, string, string];
    const first = await webhook(s, a);
    const firstId = (first.body.deploys as { jobId: string }[])[0]!.jobId;
    await waitForJob(queues, firstId, ['active']);
    const second = await webhook(s, b);
    const secondId = (second.body.deploys as { jobId: string }[])[0]!.jobId;
    const j1 = await waitForJob(queues, firstId, ['completed', 'failed']);
    const j2 = await waitForJob(queues, secondId, ['completed', 'failed']);
    expect(j1.returnvalue).toMatchObject({ outcome: 'success', sha: a });
    expect(j2.returnvalue).toMatchObject({ outcome: 'success', sha: b });
    expect(j2.processedOn).toBeGreaterThanOrEqual(j1.finishedOn ?? Infinity);
    expect(await deploymentImage(s)).toBe(`${registry.host}/${s.repo}:prod-${b}`);
    expect(await resolve(registry.url, registry.users.admin, s.repo, 'prod')).toBe(s.digests[b]);
    // An older pipeline now is refused, not deployed.
    const stale = await webhook(s, a, 10);
    expect((stale.body.deploys as { result: string }[])[0]!.result).toBe('superseded');
  });
});

describe('GitLab trouble', () => {
  it('GitLab answering 500 does not stop the deploy; reporting is retried and catches up', async () => {
    const s = scenarios.gitlab500!;
    contract.failNext('POST', `/api/v4/projects/**/deployments`, 500, 3);
    const res = await webhook(s, s.shas[1]!);
    const job = await waitForJob(queues, (res.body.deploys as { jobId: string }[])[0]!.jobId, [
      'completed',
      'failed',
    ]);
    expect(job.returnvalue).toMatchObject({ outcome: 'success' });
    const steps = deployJobSchema.parse(job.data).steps ?? {};
    expect(steps.report?.status).toBe('skipped');
    expect(steps.report?.detail).toMatch(/GitLab reporting failed/);
    const posts = contract
      .calls()
      .filter(
        (c) =>
          c.method === 'POST' &&
          c.path === `/api/v4/projects/${encodeURIComponent(s.path)}/deployments`,
      );
    expect(posts.map((c) => c.status)).toEqual([500, 500, 500, 201]);
    expect(contract.deployments(s.projectId)[0]).toMatchObject({
      status: 'success',
      sha: s.shas[1],
    });
  });

  it("rollhook's own commit status fires a success Pipeline Hook again; it deploys nothing more", async () => {
    const s = scenarios.loop!;
    const sha = s.shas[1]!;
    contract.addPipeline(s.projectId, {
      id: 7001,
      sha,
      ref: 'main',
      status: 'success',
      source: 'push',
    });
    const id = 'deploy-loop-7001';
    await waitForJob(queues, id, ['completed']);
    expect(contract.commitStatuses(s.projectId).map((c) => c.status)).toContain('success');
    // The status re-fired the pipeline's hook (same id, success) to rollhook.
    await new Promise((r) => setTimeout(r, 1000));
    const causedByUs = contract
      .hooks()
      .filter(
        (h) => h.projectId === s.projectId && h.cause !== 'seed' && h.event === 'Pipeline Hook',
      );
    expect(causedByUs.length).toBeGreaterThan(0);
    expect(
      causedByUs.every((h) => h.delivery && 'status' in h.delivery && h.delivery.status < 300),
    ).toBe(true);
    const jobs = (
      await queues.deploy.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed'])
    ).filter((j) => j.data.target === 'loop');
    expect(jobs.map((j) => j.id)).toEqual([id]);
    expect(contract.deployments(s.projectId)).toHaveLength(1);
  });
});

describe('errors decide retries', () => {
  it('an image that never appears fails the job for good, naming the image', async () => {
    const s = scenarios.success!;
    const missing = randomSha();
    const res = await webhook(s, missing);
    const job = await waitForJob(queues, (res.body.deploys as { jobId: string }[])[0]!.jobId, [
      'completed',
      'failed',
    ]);
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toMatch(
      /^step resolve failed: image \S+ is not in the registry \(waited \d+ s\); push it, then redeploy$/,
    );
    expect(job.failedReason).toContain(`${registry.host}/${s.repo}:prod-${missing}`);
    expect(job.attemptsMade).toBe(1);
    expect(contract.deployments(s.projectId).filter((d) => d.sha === missing)).toEqual([]);
  });

  it('a cluster user without rights: unrecoverable, naming the verb and resource, and GitLab hears failed', async () => {
    const s = scenarios.denied!;
    const res = await webhook(s, s.shas[1]!);
    const job = await waitForJob(queues, (res.body.deploys as { jobId: string }[])[0]!.jobId, [
      'completed',
      'failed',
    ]);
    expect(await job.getState()).toBe('failed');
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toMatch(/^step patch failed: .*(get|patch).*deployments\.apps.*/);
    expect(job.failedReason).toContain(s.namespace);
    expect(await deploymentImage(s)).toBe(`${registry.host}/${s.repo}:prod-${s.shas[0]}`);
    expect(contract.deployments(s.projectId)[0]).toMatchObject({
      sha: s.shas[1],
      status: 'failed',
    });
  });
});

describe('CI image cleanup', () => {
  it('a finished pipeline (failed here) loses its CI tag; the branch cache tag on the same digest survives', async () => {
    const s = scenarios.cleanup!;
    const sha = randomSha();
    const ciRepo = `${s.repo}-ci`;
    const digest = await pushRandomImage(registry.url, registry.users.admin, ciRepo, `ci-${sha}`);
    await tagImage(registry.url, registry.users.admin, ciRepo, `ci-${sha}`, 'cache-main');
    const res = await postWebhook(
      url,
      HOOK_SECRET,
      pipelineHook(
        { id: nextPipeline++, sha, status: 'failed' },
        { id: s.projectId, path_with_namespace: s.path },
      ),
    );
    expect(res.status).toBe(202);
    const jobId = (res.body.cleanups as { jobId: string }[])[0]!.jobId;
    for (let i = 0; ; i++) {
      const state = await (await queues.cleanupCi.getJob(jobId))?.getState();
      if (state === 'completed') break;
      if (i > 200 || state === 'failed') throw new Error(`cleanup job ${jobId} is ${state}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await listTags(registry.url, registry.users.admin, ciRepo)).toEqual(['cache-main']);
    expect(await resolve(registry.url, registry.users.admin, ciRepo, 'cache-main')).toBe(digest);
  });
});

describe('retention and rollback', () => {
  it('keepReleases keeps the releases rollhook deployed, deletes the one leaving the window, and a rollback returns to a kept one', async () => {
    const s = scenarios.keep!;
    const tags = async () => (await listTags(registry.url, registry.users.admin, s.repo)).sort();
    const [initial, a, b] = s.shas as [string, string, string];
    const c = randomSha();
    s.digests[c] = await pushRandomImage(registry.url, registry.users.admin, s.repo, `prod-${c}`);
    const deploy = async (sha: string, id: number) => {
      contract.addPipeline(s.projectId, {
        id,
        sha,
        ref: 'main',
        status: 'success',
        source: 'push',
      });
      const job = await waitForJob(queues, `deploy-keep-${id}`, ['completed', 'failed']);
      expect(job.returnvalue, job.failedReason).toMatchObject({ outcome: 'success', sha });
    };
    // The image prod had before rollhook deployed anything is no recorded release: it goes.
    await deploy(a, 7301);
    expect(await tags()).toEqual(['prod', `prod-${a}`, `prod-${b}`, `prod-${c}`].sort());
    // a was released: kept for rollback while it is the newest earlier release.
    await deploy(b, 7302);
    expect(await tags()).toEqual(['prod', `prod-${a}`, `prod-${b}`, `prod-${c}`].sort());
    // c supersedes b (kept); a leaves the window and is deleted.
    await deploy(c, 7303);
    expect(await tags()).toEqual(['prod', `prod-${b}`, `prod-${c}`].sort());
    expect(initial).not.toBe(a);

    const res = await fetch(`${url}/api/v1/targets/keep/rollback`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_TOKEN}`, 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(202);
    const { jobId } = (await res.json()) as { jobId: string };
    const job = await waitForJob(queues, jobId, ['completed', 'failed']);
    expect(job.returnvalue, job.failedReason).toMatchObject({ outcome: 'success', sha: b });
    expect(await deploymentImage(s)).toBe(`${registry.host}/${s.repo}:prod-${b}`);
    expect(await resolve(registry.url, registry.users.admin, s.repo, 'prod')).toBe(s.digests[b]);
  });
});
