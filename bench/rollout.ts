/**
 * Benchmark (not a test): how soon waitForRollout returns after the Deployment reports its
 * rollout complete, on the real test control plane. A second, independent watch on the same
 * Deployment (its own connection) notes when it first sees the complete status; the delay is
 * waitForRollout's return minus that moment, on one clock. Also: control plane start time,
 * and the whole rollout (patch to return) of a 3-replica Deployment.
 * Run: LOG_SILENT=1 node bench/rollout.ts [iterations]. Writes bench/results/kube.json.
 * A negative delay means waitForRollout returned before the observer's copy of the event arrived.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Watch } from '@kubernetes/client-node';
import { KubeAdapter, judge, type KubeTarget } from '../src/kube/index.ts';
import { deploymentView } from '../src/kube/views.ts';
import {
  adminClients,
  createTestNamespace,
  startCluster,
  testDeployment,
} from '../test/support/cluster.ts';
import { startPodReadiness } from '../test/support/pod-readiness.ts';

const iterations = Number(process.argv[2] ?? 20);

function quantiles(values: number[]): { p50: number; p95: number; max: number; min: number } {
  const v = [...values].sort((a, b) => a - b);
  const q = (p: number): number =>
    Number((v[Math.min(v.length - 1, Math.floor(p * v.length))] ?? 0).toFixed(2));
  return { min: q(0), p50: q(0.5), p95: q(0.95), max: q(1) };
}

const reuse0 = performance.now();
const build = spawnSync('bash', ['test/cluster/build.sh'], { encoding: 'utf8' });
const reuseMs = performance.now() - reuse0;
if (build.status !== 0) throw new Error(`build.sh failed: ${build.stderr}`);

const cluster = await startCluster();
const pods = await startPodReadiness(cluster.kubeconfigPath, { neverReady: /:[^/@]*broken/ });
const delays: number[] = [];
const rollouts: number[] = [];
const progressEvents: number[] = [];
try {
  const { kc, apps, core } = adminClients(cluster.kubeconfigPath);
  const ns = await createTestNamespace(core, 'bench');
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: testDeployment('web', { containers: { app: 'registry.test/app:prod-0' }, replicas: 3 }),
  });
  const kube = new KubeAdapter({ kubeconfigPath: cluster.kubeconfigPath });
  const target: KubeTarget = {
    namespace: ns,
    deployment: 'web',
    containers: { app: 'registry.test/app' },
    pinDigest: false,
  };
  await kube.waitForRollout(target, { timeoutMs: 60_000 });

  for (let i = 1; i <= iterations; i++) {
    let seenComplete: number | undefined;
    let wantGeneration = Number.POSITIVE_INFINITY;
    const observer = await new Watch(kc).watch(
      `/apis/apps/v1/namespaces/${ns}/deployments`,
      { fieldSelector: 'metadata.name=web' },
      (_type: string, obj: unknown) => {
        const d = deploymentView.safeParse(obj);
        if (!d.success || seenComplete !== undefined) return;
        if (
          (d.data.metadata.generation ?? 0) >= wantGeneration &&
          judge(d.data).state === 'complete'
        )
          seenComplete = performance.now();
      },
      () => undefined,
    );
    const t0 = performance.now();
    const set = await kube.setImages(target, { app: `registry.test/app:prod-${i}` }, `bench ${i}`);
    wantGeneration = set.generation;
    let events = 0;
    const result = await kube.waitForRollout(target, {
      timeoutMs: 60_000,
      onProgress: () => events++,
    });
    const returned = performance.now();
    // The two watches race for the same event: give the observer a moment if ours won.
    for (let w = 0; w < 100 && seenComplete === undefined; w++)
      await new Promise((r) => setTimeout(r, 10));
    observer.abort();
    if (result.outcome !== 'complete')
      throw new Error(`rollout ${i}: ${result.outcome} ${result.message}`);
    if (seenComplete === undefined)
      throw new Error(`rollout ${i}: the observer never saw the complete status`);
    delays.push(returned - seenComplete);
    rollouts.push(returned - t0);
    progressEvents.push(events);
  }
} finally {
  await pods.stop();
  await cluster.stop();
}

const out = {
  what: 'waitForRollout return minus the moment an independent watch saw the Deployment complete (same process, same clock); rollout = setImages start to waitForRollout return, 3 replicas, Pods marked Ready by the stand-in',
  controlPlane: 'etcd 3.6.8, kube-apiserver + kube-controller-manager 1.36.3, loopback, no kubelet',
  node: process.version,
  cpus: cpus().length,
  iterations,
  at: new Date().toISOString(),
  results: {
    buildReuseMs: Number(reuseMs.toFixed(0)),
    clusterStartSeconds: Number(cluster.startSeconds.toFixed(2)),
    completeToReturnMs: quantiles(delays),
    rolloutMs: quantiles(rollouts),
    progressEventsPerRollout: quantiles(progressEvents),
  },
};
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/kube.json', `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify(out.results, null, 2));
