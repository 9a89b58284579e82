/**
 * Benchmark (not a test): a whole deploy, end to end. rollhook runs as `npm start` runs it,
 * against real Redis, the registry (token auth) and the control plane (3-replica Deployment),
 * GitLab played by the contract server. Each iteration posts a Pipeline Hook for the next
 * release and measures webhook answer, webhook-to-job-finished, and every step's duration as
 * saved on the job. Run: node bench/deploy.ts [iterations]. Writes bench/results/deploy.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { deployJobSchema } from '../src/queue/jobs.ts';
import {
  adminClients,
  createTestNamespace,
  startCluster,
  testDeployment,
} from '../test/support/cluster.ts';
import {
  postWebhook,
  queuesFor,
  startRollhook,
  waitForJob,
  writeConfig,
} from '../test/support/e2e.ts';
import { startGitLabContract } from '../test/support/gitlab-contract.ts';
import { registryImageId } from '../test/support/image-id.ts';
import { pipelineHook, randomSha } from '../test/support/payloads.ts';
import { startPodReadiness } from '../test/support/pod-readiness.ts';
import { freePort } from '../test/support/processes.ts';
import { startRedis } from '../test/support/redis.ts';
import { pushRandomImage, startRegistry, tagImage } from '../test/support/registry.ts';

const iterations = Number(process.argv[2] ?? 10);
const q = (values: number[]) => {
  const v = [...values].sort((a, b) => a - b);
  const at = (p: number) => Math.round(v[Math.min(v.length - 1, Math.floor(p * v.length))] ?? 0);
  return { p50: at(0.5), p95: at(0.95), max: at(1) };
};

// Everything started is stopped at the end, also when a step in between fails.
const stops: (() => Promise<unknown>)[] = [];
process.on('uncaughtException', (err) => {
  console.error(err);
  void Promise.allSettled(stops.reverse().map((s) => s())).then(() => process.exit(1));
});
const redis = await startRedis();
stops.push(() => redis.proc.stop());
const registry = await startRegistry();
stops.push(() => registry.stop());
const cluster = await startCluster();
stops.push(() => cluster.stop());
const pods = await startPodReadiness(cluster.kubeconfigPath, {
  neverReady: /:[^/@]*broken/,
  imageId: registryImageId({ url: registry.url, host: registry.host, creds: registry.users.admin }),
});
stops.push(() => pods.stop());
const shas = Array.from({ length: iterations + 1 }, () => randomSha());
const repo = 'bench/app';
for (const sha of shas)
  await pushRandomImage(registry.url, registry.users.admin, repo, `prod-${sha}`);
await tagImage(registry.url, registry.users.admin, repo, `prod-${shas[0]}`, 'prod');
const { apps, core } = adminClients(cluster.kubeconfigPath);
const namespace = await createTestNamespace(core, 'bench');
await apps.createNamespacedDeployment({
  namespace,
  body: testDeployment('web', {
    containers: { web: `${registry.host}/${repo}:prod-${shas[0]}` },
    replicas: 3,
  }),
});
const token = `glpat-${randomBytes(6).toString('hex')}`;
const contract = await startGitLabContract({
  token,
  projects: [
    {
      id: 1,
      path_with_namespace: 'bench/app',
      refs: ['main'],
      commits: shas.map((sha) => ({ sha, refs: ['main'] })),
    },
  ],
});
stops.push(() => contract.stop());
const port = await freePort();
const prefix = `bench${randomBytes(3).toString('hex')}`;
const rollhook = await startRollhook(
  writeConfig({
    server: { port, host: '127.0.0.1' },
    redis: { url: redis.url, prefix },
    gitlab: { url: contract.url, token },
    registries: [
      {
        host: registry.host,
        url: registry.url,
        username: registry.users.admin.username,
        password: registry.users.admin.password,
      },
    ],
    targets: [
      {
        name: 'bench',
        gitlab: { project: 'bench/app', webhookSecret: 'bench-hook-secret', refs: ['main'] },
        kubernetes: {
          namespace,
          deployment: 'web',
          containers: { web: `${registry.host}/${repo}` },
        },
      },
    ],
  }),
  { KUBECONFIG: cluster.kubeconfigPath },
);
stops.push(async () => {
  rollhook.kill('SIGTERM');
  await rollhook.exited;
});
const queues = queuesFor(redis.url, prefix);
stops.push(() => queues.close());

const answerMs: number[] = [];
const totalMs: number[] = [];
const steps: Record<string, number[]> = {};
try {
  for (let i = 1; i <= iterations; i++) {
    const t0 = performance.now();
    const res = await postWebhook(
      `http://127.0.0.1:${port}`,
      'bench-hook-secret',
      pipelineHook({ id: 100 + i, sha: shas[i] }, { id: 1, path_with_namespace: 'bench/app' }),
    );
    answerMs.push(performance.now() - t0);
    if (res.status !== 202)
      throw new Error(`webhook answered ${res.status}: ${JSON.stringify(res.body)}`);
    const job = await waitForJob(queues, `deploy-bench-${100 + i}`, ['completed', 'failed']);
    if (job.failedReason) throw new Error(job.failedReason);
    totalMs.push((job.finishedOn ?? 0) - job.timestamp);
    for (const [name, s] of Object.entries(deployJobSchema.parse(job.data).steps ?? {}))
      (steps[name] ??= []).push(s.ms);
  }
} finally {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
}

const result = {
  what: 'one deploy of a 3-replica Deployment, webhook to finished job: rollhook as a process, real Redis, registry and control plane',
  node: process.version,
  cpus: cpus().length,
  iterations,
  at: new Date().toISOString(),
  webhookAnswerMs: q(answerMs),
  webhookToFinishedMs: q(totalMs),
  stepMs: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, q(v)])),
};
mkdirSync(new URL('./results', import.meta.url), { recursive: true });
writeFileSync(
  new URL('./results/deploy.json', import.meta.url),
  `${JSON.stringify(result, null, 2)}\n`,
);
console.log(JSON.stringify(result, null, 2));
