import type { TestProject } from 'vitest/node';
import { randomBytes } from 'node:crypto';
import { startCluster } from './cluster.ts';
import { startPodReadiness } from './pod-readiness.ts';
import { startRedis } from './redis.ts';
import { startRegistry } from './registry.ts';
import { registryImageId } from './image-id.ts';

/**
 * Starts the real servers the tests use, once per run, and hands their coordinates to
 * the tests through inject(). A server that cannot start fails the run with the reason.
 *
 * ROLLHOOK_TEST_ONLY=redis,registry (a comma list) starts only those parts: for a quick
 * local loop on one test file. The test command starts everything.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const only = process.env.ROLLHOOK_TEST_ONLY?.split(',').map((s) => s.trim());
  const wanted = (part: string): boolean => !only || only.includes(part);
  const stops: (() => Promise<void>)[] = [];
  const teardown = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    if (wanted('redis')) {
      const redis = await startRedis();
      stops.push(() => redis.proc.stop());
      project.provide('redisUrl', redis.url);
    }
    let registry: Awaited<ReturnType<typeof startRegistry>> | undefined;
    if (wanted('registry')) {
      registry = await startRegistry();
      const r = registry;
      stops.push(() => r.stop());
      project.provide('registry', {
        url: r.url,
        host: r.host,
        service: r.service,
        users: r.users,
        configPath: r.configPath,
      });
    }
    if (wanted('cluster')) {
      const deployer = { name: 'rollhook-deployer', token: randomBytes(24).toString('hex') };
      const cluster = await startCluster({ users: [deployer] });
      stops.push(() => cluster.stop());
      // Pods become Ready as a kubelet would make them; tags containing `broken` (or, for
      // tags made of a sha, `deadbeef`) never do.
      // Running containers report the digest their tag resolves to in the test registry.
      const imageId = registry
        ? registryImageId({ url: registry.url, host: registry.host, creds: registry.users.admin })
        : undefined;
      const pods = await startPodReadiness(cluster.kubeconfigPath, {
        neverReady: /:[^/@]*(broken|deadbeef)/,
        held: /:[^/@]*held/,
        imageId,
      });
      stops.push(() => pods.stop());
      project.provide('cluster', {
        kubeconfig: cluster.kubeconfigPath,
        server: cluster.server,
        adminToken: cluster.adminToken,
        etcdUrl: cluster.etcdUrl,
        deployerContext: deployer.name,
        startSeconds: cluster.startSeconds,
      });
    }
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    /** admin may pull, push and delete; pusher may pull and push only */
    registry: {
      url: string;
      host: string;
      service: string;
      users: {
        admin: { username: string; password: string };
        pusher: { username: string; password: string };
      };
      configPath: string;
    };
    /**
     * The test control plane. `kubeconfig` holds context `admin` (current, system:masters) and
     * context `deployerContext`, a token user with no rights until a test binds some. Pods of
     * images whose tag contains `broken` stay in ImagePullBackOff; `held` ones stay Pending
     * until a test marks them (markPodReady in pod-readiness.ts).
     */
    cluster: {
      kubeconfig: string;
      server: string;
      adminToken: string;
      etcdUrl: string;
      deployerContext: string;
      startSeconds: number;
    };
  }
}
