import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  makeInformer,
  setHeaderOptions,
  type V1Pod,
} from '@kubernetes/client-node';

/**
 * Stands in for the kubelet in a control plane without nodes: marks each new Pod Running and
 * Ready, so the ReplicaSet controller counts it available and Deployments roll out for real.
 * Pods whose image matches `neverReady` stay Pending with `ImagePullBackOff`, so a Deployment
 * with a short progressDeadlineSeconds ends in ProgressDeadlineExceeded. Pods whose image
 * matches `held` are left alone until a test calls markPodReady(): a rollout that stands still
 * for as long as a test needs.
 */
export interface PodReadinessOptions {
  neverReady: RegExp;
  held?: RegExp;
  /** the imageID reported for a running container; by default the digest when the image pins one, else '' */
  imageId?: (image: string) => string | Promise<string>;
}

export interface PodReadiness {
  stop(): Promise<void>;
  /** Pods marked so far (Ready or ImagePullBackOff) */
  readonly marked: number;
}

const WAITING_REASON = 'ImagePullBackOff';

function defaultImageId(image: string): string {
  const at = image.indexOf('@sha256:');
  return at > 0 ? `${image.slice(0, at).replace(/:[^/:]+$/, '')}${image.slice(at)}` : '';
}

function containersOf(pod: V1Pod): { name: string; image: string }[] {
  return (pod.spec?.containers ?? []).map((c) => ({ name: c.name, image: c.image ?? '' }));
}

function condition(
  type: string,
  ok: boolean,
  now: string,
  reason?: string,
): Record<string, string> {
  return {
    type,
    status: ok ? 'True' : 'False',
    lastTransitionTime: now,
    ...(reason ? { reason } : {}),
  };
}

/** The status a kubelet would report for a Pod whose containers all started and passed readiness. */
export async function readyStatus(
  pod: V1Pod,
  imageId: (image: string) => string | Promise<string> = defaultImageId,
): Promise<object> {
  const now = new Date().toISOString();
  const containerStatuses = await Promise.all(
    containersOf(pod).map(async (c) => ({
      name: c.name,
      image: c.image,
      imageID: await Promise.resolve()
        .then(() => imageId(c.image))
        // An image the resolver cannot find still runs: a kubelet would report some digest.
        .catch(() => defaultImageId(c.image)),
      ready: true,
      started: true,
      restartCount: 0,
      state: { running: { startedAt: now } },
    })),
  );
  const initContainerStatuses = (pod.spec?.initContainers ?? []).map((c) => ({
    name: c.name,
    image: c.image ?? '',
    imageID: defaultImageId(c.image ?? ''),
    ready: true,
    restartCount: 0,
    state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: now, finishedAt: now } },
  }));
  return {
    status: {
      phase: 'Running',
      startTime: now,
      conditions: [
        condition('PodScheduled', true, now),
        condition('Initialized', true, now),
        condition('ContainersReady', true, now),
        condition('Ready', true, now),
      ],
      containerStatuses,
      ...(initContainerStatuses.length ? { initContainerStatuses } : {}),
    },
  };
}

/** The status of a Pod whose image cannot be pulled: every container matching `neverReady` waits in back-off. */
export function backOffStatus(pod: V1Pod, neverReady: RegExp): object {
  const now = new Date().toISOString();
  return {
    status: {
      phase: 'Pending',
      startTime: now,
      conditions: [
        condition('PodScheduled', true, now),
        condition('Initialized', true, now),
        condition('ContainersReady', false, now, 'ContainersNotReady'),
        condition('Ready', false, now, 'ContainersNotReady'),
      ],
      containerStatuses: containersOf(pod).map((c) => ({
        name: c.name,
        image: c.image,
        imageID: '',
        ready: false,
        started: false,
        restartCount: 0,
        state: neverReady.test(c.image)
          ? { waiting: { reason: WAITING_REASON, message: `Back-off pulling image "${c.image}"` } }
          : { waiting: { reason: 'ContainerCreating' } },
      })),
    },
  };
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

async function patchStatus(core: CoreV1Api, pod: V1Pod, body: object): Promise<void> {
  await core.patchNamespacedPodStatus(
    {
      name: pod.metadata?.name ?? '',
      namespace: pod.metadata?.namespace ?? '',
      body,
      fieldManager: 'rollhook-test-kubelet',
    },
    mergePatch,
  );
}

/** Marks one Pod Running and Ready, as the stand-in does for every Pod it does not hold back. */
export async function markPodReady(
  kc: KubeConfig,
  pod: V1Pod,
  imageId?: (image: string) => string | Promise<string>,
): Promise<void> {
  await patchStatus(kc.makeApiClient(CoreV1Api), pod, await readyStatus(pod, imageId));
}

function isReady(pod: V1Pod): boolean {
  return (
    pod.status?.phase === 'Running' &&
    (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}

function isBackingOff(pod: V1Pod): boolean {
  return (pod.status?.containerStatuses ?? []).some(
    (s) => s.state?.waiting?.reason === WAITING_REASON,
  );
}

export async function startPodReadiness(
  kubeconfigPath: string,
  opts: PodReadinessOptions,
): Promise<PodReadiness> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const informer = makeInformer<V1Pod>(kc, '/api/v1/pods', () => core.listPodForAllNamespaces());
  const inFlight = new Set<string>();
  let marked = 0;
  let stopped = false;

  const handle = (pod: V1Pod): void => {
    const uid = pod.metadata?.uid;
    if (!uid || pod.metadata?.deletionTimestamp || inFlight.has(uid)) return;
    const images = containersOf(pod).map((c) => c.image);
    if (opts.held && images.some((i) => opts.held?.test(i))) return;
    const broken = images.some((i) => opts.neverReady.test(i));
    if (broken ? isBackingOff(pod) : isReady(pod)) return;
    inFlight.add(uid);
    void (async () => {
      // A few tries: a Pod may see no further event that would bring it back here.
      for (let attempt = 1; attempt <= 5 && !stopped; attempt++) {
        try {
          await patchStatus(
            core,
            pod,
            broken ? backOffStatus(pod, opts.neverReady) : await readyStatus(pod, opts.imageId),
          );
          marked++;
          return;
        } catch (err) {
          // A Pod deleted meanwhile needs no status.
          if (err instanceof ApiException && err.code === 404) return;
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
      }
    })().finally(() => inFlight.delete(uid));
  };

  informer.on('add', handle);
  informer.on('update', handle);
  informer.on('error', () => {
    // The informer stops on an error; restart it, as a kubelet would reconnect.
    if (!stopped)
      setTimeout(() => void (stopped ? undefined : informer.start().catch(() => undefined)), 500);
  });
  await informer.start();

  return {
    get marked() {
      return marked;
    },
    async stop() {
      stopped = true;
      await informer.stop();
    },
  };
}
