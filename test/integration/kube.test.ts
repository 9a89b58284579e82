import { type AppsV1Api, type CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  CHANGE_CAUSE,
  KubeAdapter,
  KubeNotFoundError,
  KubeRequestError,
  changeCause,
  imageRefsFor,
  isRetryable,
  type KubeTarget,
  type RolloutProgress,
} from '../../src/kube/index.ts';
import { adminClients, createTestNamespace, testDeployment } from '../support/cluster.ts';
import { markPodReady } from '../support/pod-readiness.ts';

/**
 * The Kubernetes adapter against a real control plane (etcd, kube-apiserver,
 * kube-controller-manager) with the pod-readiness stand-in marking Pods Ready: Deployments
 * roll out through the real deployment and ReplicaSet controllers.
 */

const REPO = 'registry.test/group/app/php-prod';
const WORKER_REPO = 'registry.test/group/app/worker';
const digest = (c: string): string => `sha256:${c.repeat(64).slice(0, 64)}`;

let kc: KubeConfig;
let apps: AppsV1Api;
let core: CoreV1Api;
let kube: KubeAdapter;
const namespaces: string[] = [];

beforeAll(() => {
  const cluster = inject('cluster');
  ({ kc, apps, core } = adminClients(cluster.kubeconfig));
  kube = new KubeAdapter({ kubeconfigPath: cluster.kubeconfig, retry: { baseDelayMs: 50 } });
});

afterAll(async () => {
  for (const ns of namespaces) await core.deleteNamespace({ name: ns }).catch(() => undefined);
});

function target(
  namespace: string,
  deployment: string,
  containers: Record<string, string> = { app: REPO },
  pinDigest = false,
): KubeTarget {
  return { namespace, deployment, containers, pinDigest };
}

/** A namespace holding one Deployment whose first rollout has completed. */
async function deployed(
  name: string,
  containers: Record<string, string>,
  opts: { replicas?: number; progressDeadlineSeconds?: number } = {},
): Promise<string> {
  const ns = await createTestNamespace(core, 'kube');
  namespaces.push(ns);
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: testDeployment(name, { containers, ...opts }),
  });
  const first = await kube.waitForRollout(target(ns, name), { timeoutMs: 30_000 });
  expect(first.outcome, first.message).toBe('complete');
  return ns;
}

async function deploymentImages(
  ns: string,
  name: string,
): Promise<Record<string, string | undefined>> {
  const d = await apps.readNamespacedDeployment({ name, namespace: ns });
  return Object.fromEntries(
    (d.spec?.template.spec?.containers ?? []).map((c) => [c.name, c.image]),
  );
}

/** Marks Pods of held images Ready until stopped: a rollout that moves only when the test lets it. */
function releaseHeldPods(ns: string): { stop(): void } {
  let stopped = false;
  void (async () => {
    while (!stopped) {
      const pods = await core.listNamespacedPod({ namespace: ns }).catch(() => undefined);
      for (const pod of pods?.items ?? []) {
        const ready = (pod.status?.conditions ?? []).some(
          (c) => c.type === 'Ready' && c.status === 'True',
        );
        if (!ready && !pod.metadata?.deletionTimestamp)
          await markPodReady(kc, pod).catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
  return {
    stop() {
      stopped = true;
    },
  };
}

async function waitForProgress(
  events: RolloutProgress[],
  check: (p: RolloutProgress) => boolean,
): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (events.some(check)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no progress event matched; saw ${JSON.stringify(events.map((e) => e.message))}`);
}

describe('kube adapter on a real control plane', () => {
  it('rolls a 3-replica Deployment to a new image, with progress in order and the change-cause recorded', async () => {
    const ns = await deployed('web', { app: `${REPO}:prod-aaa` });
    const t = target(ns, 'web');
    const cause = changeCause({ pipelineId: 41, sha: 'bbbbbbbbbbbbbbbbbbbb', user: 'alice' });

    const set = await kube.setImages(t, { app: `${REPO}:prod-bbb` }, cause);
    expect(set).toEqual({
      previousImages: { app: `${REPO}:prod-aaa` },
      changed: true,
      generation: 2,
    });

    const events: RolloutProgress[] = [];
    const result = await kube.waitForRollout(t, {
      timeoutMs: 60_000,
      onProgress: (p) => events.push(p),
    });
    expect(result.outcome, result.message).toBe('complete');
    expect(result.message).toBe('deployment "web" successfully rolled out');
    expect(result.progress).toMatchObject({
      desired: 3,
      updated: 3,
      ready: 3,
      available: 3,
      total: 3,
      generation: 2,
      observedGeneration: 2,
    });
    expect(result.stats).toMatchObject({ lists: 1, expired: 0 });

    // In order: the generation observed never goes back, and the last event is the complete
    // state. (updatedReplicas itself may dip for a moment: the deployment controller computes
    // status from its cache, and a loaded machine shows it; we report what the object says.)
    expect(events.length).toBeGreaterThanOrEqual(1);
    for (let i = 1; i < events.length; i++)
      expect(events[i]?.observedGeneration).toBeGreaterThanOrEqual(
        events[i - 1]?.observedGeneration ?? 0,
      );
    expect(events.at(-1)?.message).toBe(result.message);
    for (const e of events.slice(0, -1)) expect(e.message).toMatch(/^Waiting for deployment/);

    // What `kubectl rollout history` shows: the change-cause on the Deployment and on its new ReplicaSet.
    const d = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    expect(d.metadata?.annotations?.[CHANGE_CAUSE]).toBe(
      'rollhook deploy, sha bbbbbbbbbbbb, pipeline 41, by alice',
    );
    const rss = await apps.listNamespacedReplicaSet({ namespace: ns });
    const newest = rss.items.find(
      (rs) => rs.metadata?.annotations?.['deployment.kubernetes.io/revision'] === '2',
    );
    expect(newest?.metadata?.annotations?.[CHANGE_CAUSE]).toBe(cause);
    expect(newest?.spec?.template?.spec?.containers[0]?.image).toBe(`${REPO}:prod-bbb`);
  });

  it('changes nothing when the images are already set, and still reports what they replaced', async () => {
    const ns = await deployed('idem', { app: `${REPO}:prod-aaa` }, { replicas: 1 });
    const t = target(ns, 'idem');
    const first = await kube.setImages(t, { app: `${REPO}:prod-bbb` }, 'first');
    expect(first.changed).toBe(true);
    // Once the controller is done writing status, any write would show in the resourceVersion.
    expect((await kube.waitForRollout(t, { timeoutMs: 30_000 })).outcome).toBe('complete');
    const before = await apps.readNamespacedDeployment({ name: 'idem', namespace: ns });

    const again = await kube.setImages(t, { app: `${REPO}:prod-bbb` }, 'second');
    expect(again).toEqual({
      previousImages: { app: `${REPO}:prod-aaa` },
      changed: false,
      generation: first.generation,
    });
    const after = await apps.readNamespacedDeployment({ name: 'idem', namespace: ns });
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(after.metadata?.annotations?.[CHANGE_CAUSE]).toBe('first');
  });

  it('pins digests: sets repo:tag@sha256 and reports the running digest to the registry', async () => {
    const ns = await deployed(
      'pinned',
      { app: `${REPO}:prod-aaa@${digest('a')}` },
      { replicas: 2 },
    );
    const t = target(ns, 'pinned', { app: REPO }, true);
    const images = imageRefsFor(t, 'prod-ccc', { app: digest('c') });
    expect(images).toEqual({ app: `${REPO}:prod-ccc@${digest('c')}` });
    expect(() => imageRefsFor(t, 'prod-ccc')).toThrow(/needs its sha256 digest/);

    const running = await kube.runningDigests([t]);
    expect(running.has(digest('a'))).toBe(true);

    const set = await kube.setImages(t, images, 'pin');
    expect(set.previousImages).toEqual({ app: `${REPO}:prod-aaa@${digest('a')}` });
    const result = await kube.waitForRollout(t, { timeoutMs: 60_000 });
    expect(result.outcome, result.message).toBe('complete');
    expect(await deploymentImages(ns, 'pinned')).toEqual({ app: images.app });

    // Old Pods are gone once complete: only the new digest runs.
    const after = await kube.runningDigests([t, t]);
    expect(after.has(digest('c'))).toBe(true);
    expect(after.has(`${REPO}:prod-ccc@${digest('c')}`)).toBe(true);
    expect(after.has(`${REPO}@${digest('c')}`)).toBe(true);
    expect(after.has(digest('a'))).toBe(false);
  });

  it('sets two containers of one Deployment in one revision, and only the named ones', async () => {
    const containers = { app: REPO, worker: WORKER_REPO };
    const ns = await deployed(
      'two',
      { app: `${REPO}:prod-aaa`, worker: `${WORKER_REPO}:prod-aaa` },
      { replicas: 2 },
    );
    const t = target(ns, 'two', containers);

    const set = await kube.setImages(t, imageRefsFor(t, 'prod-bbb'), 'both');
    expect(set.previousImages).toEqual({
      app: `${REPO}:prod-aaa`,
      worker: `${WORKER_REPO}:prod-aaa`,
    });
    expect(set.generation).toBe(2);
    expect((await kube.waitForRollout(t, { timeoutMs: 60_000 })).outcome).toBe('complete');
    const rss = await apps.listNamespacedReplicaSet({ namespace: ns });
    expect(
      rss.items.map((rs) => rs.metadata?.annotations?.['deployment.kubernetes.io/revision']).sort(),
    ).toEqual(['1', '2']);

    const one = await kube.setImages(t, { worker: `${WORKER_REPO}:prod-ccc` }, 'worker only');
    expect(one.previousImages).toEqual({ worker: `${WORKER_REPO}:prod-bbb` });
    expect(await deploymentImages(ns, 'two')).toEqual({
      app: `${REPO}:prod-bbb`,
      worker: `${WORKER_REPO}:prod-ccc`,
    });
  });

  it('reads again on a conflict, so concurrent patches each report exactly what they replaced', async () => {
    const ns = await deployed('race', { app: `${REPO}:prod-aaa` }, { replicas: 1 });
    const t = target(ns, 'race');
    const [b, c] = await Promise.all([
      kube.setImages(t, { app: `${REPO}:prod-bbb` }, 'b'),
      kube.setImages(t, { app: `${REPO}:prod-ccc` }, 'c'),
    ]);
    const final = (await deploymentImages(ns, 'race')).app;
    const [winner, loser] = final === `${REPO}:prod-ccc` ? [c, b] : [b, c];
    // The patch applied last replaced the other one's image, not the original.
    expect(winner.previousImages.app).toBe(
      final === `${REPO}:prod-ccc` ? `${REPO}:prod-bbb` : `${REPO}:prod-ccc`,
    );
    expect(loser.previousImages.app).toBe(`${REPO}:prod-aaa`);
    expect(winner.generation).toBe(3);
  });

  it('fails a bad image through the progress deadline with a pod hint, then rolls back to the recorded images', async () => {
    const ns = await deployed('bad', { app: `${REPO}:prod-good` }, { progressDeadlineSeconds: 6 });
    const t = target(ns, 'bad');
    const set = await kube.setImages(t, { app: `${REPO}:prod-broken` }, 'broken release');

    const events: RolloutProgress[] = [];
    const failed = await kube.waitForRollout(t, {
      timeoutMs: 60_000,
      onProgress: (p) => events.push(p),
    });
    expect(failed.outcome, failed.message).toBe('failed');
    expect(failed.reason).toBe('ProgressDeadlineExceeded');
    expect(failed.message).toMatch(/exceeded its progress deadline/);
    expect(
      events
        .flatMap((e) => e.hints)
        .some((h) => h.reason === 'ImagePullBackOff' && h.container === 'app'),
    ).toBe(true);
    // The old Pods kept serving: maxUnavailable rounds to 0 for 3 replicas.
    expect(failed.progress.available).toBe(3);

    const back = await kube.rollback(t, set.previousImages, 'rollback after failure', {
      timeoutMs: 60_000,
    });
    expect(back.set).toMatchObject({
      changed: true,
      previousImages: { app: `${REPO}:prod-broken` },
    });
    expect(back.rollout.outcome, back.rollout.message).toBe('complete');
    expect(back.rollout.progress.hints).toEqual([]);
    expect(await deploymentImages(ns, 'bad')).toEqual({ app: `${REPO}:prod-good` });
  });

  it('undoes like kubectl rollout undo: to the previous revision, or to a named one', async () => {
    const ns = await deployed('undo', { app: `${REPO}:prod-r1` }, { replicas: 1 });
    const t = target(ns, 'undo');
    for (const r of ['r2', 'r3']) {
      await kube.setImages(t, { app: `${REPO}:prod-${r}` }, `release ${r}`);
      expect((await kube.waitForRollout(t, { timeoutMs: 30_000 })).outcome).toBe('complete');
    }

    const prev = await kube.undoToRevision(t, undefined, { timeoutMs: 30_000 });
    expect(prev).toMatchObject({ revision: 2, changed: true, rollout: { outcome: 'complete' } });
    let d = await apps.readNamespacedDeployment({ name: 'undo', namespace: ns });
    expect(d.spec?.template.spec?.containers[0]?.image).toBe(`${REPO}:prod-r2`);
    expect(d.metadata?.annotations?.[CHANGE_CAUSE]).toBe('release r2');
    expect(d.metadata?.annotations?.['deployment.kubernetes.io/revision']).toBe('4');
    expect(d.spec?.template.metadata?.labels?.['pod-template-hash']).toBeUndefined();

    const named = await kube.undoToRevision(t, 1, { timeoutMs: 30_000 });
    expect(named).toMatchObject({ revision: 1, changed: true, rollout: { outcome: 'complete' } });
    d = await apps.readNamespacedDeployment({ name: 'undo', namespace: ns });
    expect(d.spec?.template.spec?.containers[0]?.image).toBe(`${REPO}:prod-r1`);

    const same = await kube.undoToRevision(t, 5, { timeoutMs: 30_000 });
    expect(same.changed).toBe(false);
    await expect(kube.undoToRevision(t, 99, { timeoutMs: 30_000 })).rejects.toThrow(
      /has no revision 99/,
    );
  });

  it('ends with deleted when the Deployment is deleted mid-watch', async () => {
    const ns = await deployed('gone', { app: `${REPO}:prod-aaa` }, { replicas: 2 });
    const t = target(ns, 'gone');
    await kube.setImages(t, { app: `${REPO}:prod-held` }, 'held');
    const events: RolloutProgress[] = [];
    const waiting = kube.waitForRollout(t, {
      timeoutMs: 60_000,
      onProgress: (p) => events.push(p),
    });
    await waitForProgress(events, (p) => p.observedGeneration === 2);
    await apps.deleteNamespacedDeployment({ name: 'gone', namespace: ns });
    const result = await waiting;
    expect(result.outcome).toBe('deleted');
    expect(result.message).toMatch(/deleted/);
  });

  it('lists again when its watch expires mid-rollout (history compacted: 410 Gone) and still sees completion', async () => {
    const { etcdUrl } = inject('cluster');
    const ns = await deployed('expire', { app: `${REPO}:prod-aaa` }, { replicas: 2 });
    const t = target(ns, 'expire');
    await kube.setImages(t, { app: `${REPO}:prod-held` }, 'held');
    const events: RolloutProgress[] = [];
    // One-second watches: the first ends soon after the compaction below and must rewatch from a compacted revision.
    const waiting = kube.waitForRollout(t, {
      timeoutMs: 60_000,
      watchTimeoutSeconds: 1,
      onProgress: (p) => events.push(p),
    });
    await waitForProgress(events, (p) => p.observedGeneration === 2);

    // Writes after the watch's revision, then compaction up to the last: the watch's next revision is gone.
    for (const name of ['advance-1', 'advance-2'])
      await core.createNamespacedConfigMap({
        namespace: ns,
        body: { metadata: { name }, data: { a: '1' } },
      });
    const range = (await (
      await fetch(`${etcdUrl}/v3/kv/range`, {
        method: 'POST',
        body: JSON.stringify({ key: Buffer.from('/').toString('base64') }),
      })
    ).json()) as {
      header: { revision: string };
    };
    const compact = await fetch(`${etcdUrl}/v3/kv/compaction`, {
      method: 'POST',
      body: JSON.stringify({ revision: range.header.revision, physical: true }),
    });
    expect(compact.ok).toBe(true);
    await new Promise((r) => setTimeout(r, 2500));

    const release = releaseHeldPods(ns);
    const result = await waiting.finally(() => release.stop());
    expect(result.outcome, result.message).toBe('complete');
    expect(result.stats.expired).toBeGreaterThanOrEqual(1);
    expect(result.stats.lists).toBeGreaterThanOrEqual(2);
    expect(result.progress).toMatchObject({ updated: 2, available: 2 });
  });

  it('reports paused and timeout as outcomes, not errors', async () => {
    const ns = await deployed('still', { app: `${REPO}:prod-aaa` }, { replicas: 1 });
    const t = target(ns, 'still');
    await kube.setImages(t, { app: `${REPO}:prod-held` }, 'held');
    const timedOut = await kube.waitForRollout(t, { timeoutMs: 1500 });
    expect(timedOut.outcome).toBe('timeout');
    expect(timedOut.message).toMatch(/did not finish within 1500 ms/);

    await apps.patchNamespacedDeployment({
      name: 'still',
      namespace: ns,
      body: [{ op: 'add', path: '/spec/paused', value: true }],
    });
    await kube.setImages(t, { app: `${REPO}:prod-held2` }, 'while paused');
    const paused = await kube.waitForRollout(t, { timeoutMs: 30_000 });
    expect(paused.outcome).toBe('paused');
    await expect(kube.undoToRevision(t, undefined, { timeoutMs: 1000 })).rejects.toThrow(
      /is paused/,
    );
  });

  it('aborts a wait through its signal', async () => {
    const ns = await deployed('abort', { app: `${REPO}:prod-aaa` }, { replicas: 1 });
    const t = target(ns, 'abort');
    await kube.setImages(t, { app: `${REPO}:prod-held` }, 'held');
    const ctl = new AbortController();
    const waiting = kube.waitForRollout(t, { timeoutMs: 60_000, signal: ctl.signal });
    ctl.abort(new Error('worker shutting down'));
    await expect(waiting).rejects.toThrow('worker shutting down');
  });

  it('names what is missing: a Deployment, a namespace, a container', async () => {
    const ns = await deployed('named', { app: `${REPO}:prod-aaa` }, { replicas: 1 });
    const missing = kube.setImages(target(ns, 'nope'), { app: `${REPO}:x` }, 'c');
    await expect(missing).rejects.toBeInstanceOf(KubeNotFoundError);
    await expect(missing).rejects.toThrow(`deployments.apps ${ns}/nope not found`);
    const err = await kube
      .waitForRollout(target('no-such-namespace', 'web'), { timeoutMs: 5000 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeNotFoundError);
    expect(isRetryable(err)).toBe(false);
    expect((err as KubeNotFoundError).namespace).toBe('no-such-namespace');

    await expect(
      kube.setImages(target(ns, 'named'), { sidecar: `${REPO}:x` }, 'c'),
    ).rejects.toThrow(/not configured/);
    const noContainer = kube.setImages(
      target(ns, 'named', { app: REPO, sidecar: REPO }),
      { sidecar: `${REPO}:x` },
      'c',
    );
    await expect(noContainer).rejects.toBeInstanceOf(KubeRequestError);
    await expect(noContainer).rejects.toThrow(/has no container sidecar \(it has: app\)/);
    // Nothing was added by a patch.
    expect(await deploymentImages(ns, 'named')).toEqual({ app: `${REPO}:prod-aaa` });
  });

  it('loads the kubeconfig from the default chain (KUBECONFIG) and switches to a target context', async () => {
    const ns = await deployed('chain', { app: `${REPO}:prod-aaa` }, { replicas: 1 });
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = inject('cluster').kubeconfig;
    try {
      const viaDefault = new KubeAdapter();
      expect((await viaDefault.runningDigests([target(ns, 'chain')])).has(`${REPO}:prod-aaa`)).toBe(
        true,
      );
      expect(
        (await viaDefault.runningDigests([{ ...target(ns, 'chain'), context: 'admin' }])).has(
          `${REPO}:prod-aaa`,
        ),
      ).toBe(true);
      expect(() => viaDefault.kubeConfig({ context: 'prod-cluster' })).toThrow(
        /context "prod-cluster" is not in the kubeconfig/,
      );
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
    }
  });
});
