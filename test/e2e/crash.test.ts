import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { deployJobSchema } from '../../src/queue/jobs.ts';
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
import { pushRandomImage, resolve, tagImage, uniqueRepo } from '../support/registry.ts';
import type { RollhookProcess } from '../support/spawn-rollhook.ts';

const procs: RollhookProcess[] = [];
let contract: GitLabContract;
let proxy: FaultProxy;

beforeAll(async () => {
  proxy = await startFaultProxy(inject('registry').url);
});
afterAll(async () => {
  for (const p of procs)
    if (p.child.exitCode === null && p.child.signalCode === null) p.kill('SIGKILL');
  await contract?.stop();
  await proxy?.stop();
});

it('a worker killed with SIGKILL mid-rollout: the restarted one completes the job, with one promotion and one deletion', async () => {
  const registry = inject('registry');
  const cluster = inject('cluster');
  const redisUrl = inject('redisUrl');
  const { apps, core } = adminClients(cluster.kubeconfig);
  const namespace = await createTestNamespace(core, 'e2e-crash');
  const repo = uniqueRepo('e2e/crash');
  const [old, next] = [randomSha(), randomSha()];
  const digests = {
    old: await pushRandomImage(registry.url, registry.users.admin, repo, `prod-${old}`),
    next: await pushRandomImage(registry.url, registry.users.admin, repo, `prod-${next}`),
  };
  await tagImage(registry.url, registry.users.admin, repo, `prod-${old}`, 'prod');
  // minReadySeconds makes the rollout last long enough to be killed in the middle of it.
  const deployment = testDeployment('web', {
    containers: { web: `${registry.host}/${repo}:prod-${old}` },
    replicas: 3,
  });
  deployment.spec!.minReadySeconds = 2;
  await apps.createNamespacedDeployment({ namespace, body: deployment });

  const token = `glpat-${randomBytes(6).toString('hex')}`;
  contract = await startGitLabContract({
    token,
    projects: [
      {
        id: 300,
        path_with_namespace: 'group/crash',
        refs: ['main'],
        commits: [{ sha: next, refs: ['main'] }],
      },
    ],
  });
  const port = await freePort();
  const prefix = `crash${randomBytes(3).toString('hex')}`;
  const configFile = writeConfig({
    server: { port, host: '127.0.0.1' },
    redis: { url: redisUrl, prefix },
    gitlab: { url: contract.url, token },
    registries: [
      {
        host: registry.host,
        url: proxy.url,
        username: registry.users.admin.username,
        password: registry.users.admin.password,
      },
    ],
    worker: { lockTtl: '2s' },
    targets: [
      {
        name: 'crash',
        gitlab: { project: 'group/crash', webhookSecret: 'crash-hook-secret', refs: ['main'] },
        kubernetes: {
          namespace,
          deployment: 'web',
          containers: { web: `${registry.host}/${repo}` },
        },
        rollout: { timeout: '90s' },
      },
    ],
  });
  const env = { KUBECONFIG: cluster.kubeconfig };
  const first = await startRollhook(configFile, env);
  procs.push(first);
  const queues = queuesFor(redisUrl, prefix);

  const res = await postWebhook(
    `http://127.0.0.1:${port}`,
    'crash-hook-secret',
    pipelineHook({ id: 900, sha: next }, { id: 300, path_with_namespace: 'group/crash' }),
  );
  expect(res.status).toBe(202);
  const jobId = 'deploy-crash-900';
  for (let i = 0; ; i++) {
    const job = await queues.deploy.getJob(jobId);
    if ((job?.progress as { step?: string } | undefined)?.step === 'watch') break;
    if (i > 300) throw new Error(`job never reached watch: ${JSON.stringify(job?.progress)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  first.kill('SIGKILL');
  await first.exited;
  expect(await (await queues.deploy.getJob(jobId))?.getState()).toBe('active');

  const second = await startRollhook(configFile, env);
  procs.push(second);
  const job = await waitForJob(queues, jobId, ['completed', 'failed'], 90_000);
  expect(job.failedReason).toBeUndefined();
  expect(job.returnvalue).toEqual({ outcome: 'success', sha: next });

  const steps = deployJobSchema.parse(job.data).steps ?? {};
  expect(Object.keys(steps)).toEqual(SUCCESS_STEPS);
  // The first request of a fresh client is answered 401 (token challenge), then repeated.
  const promotions = proxy.seen.filter(
    (r) => r.method === 'PUT' && r.path === `/v2/${repo}/manifests/prod` && r.status === 201,
  );
  const deletions = proxy.seen.filter(
    (r) =>
      r.method === 'DELETE' &&
      r.path.startsWith(`/v2/${repo}/manifests/sha256:`) &&
      r.status === 202,
  );
  expect(promotions).toHaveLength(1);
  expect(deletions.map((d) => d.path)).toEqual([`/v2/${repo}/manifests/${digests.old}`]);
  expect(await resolve(registry.url, registry.users.admin, repo, 'prod')).toBe(digests.next);
  expect(contract.deployments(300)).toEqual([
    expect.objectContaining({ sha: next, status: 'success' }),
  ]);
  second.kill('SIGTERM');
  expect((await second.exited).code).toBe(0);
  await queues.close();
});
