import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1Deployment,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { freePort, startProcess, tail, waitUntil, type Started } from './processes.ts';

/**
 * A real Kubernetes control plane on loopback, without containers: etcd, kube-apiserver and
 * kube-controller-manager (deployment, replicaset and garbage-collector controllers), built
 * once from the Go module proxy by test/cluster/build.sh. No kubelet: the pod-readiness
 * stand-in (pod-readiness.ts) plays its part for Pod status.
 */

export interface ClusterUser {
  /** user name the authorizer sees; also the kubeconfig context and user entry name */
  name: string;
  token: string;
  groups?: string[];
}

export interface Cluster {
  /** admin kubeconfig: context `admin` (current, system:masters) and one context per extra user */
  kubeconfigPath: string;
  /** https://127.0.0.1:PORT */
  server: string;
  adminToken: string;
  /** etcd client URL, for tests that compact history to expire watches */
  etcdUrl: string;
  /** PEM of the apiserver's self-signed serving certificate (its CA included) */
  caPem: string;
  dataDir: string;
  /** seconds from the first process start to the control plane answering ready */
  startSeconds: number;
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  dataDir?: string;
  /** token users besides the admin, written to --token-auth-file and the kubeconfig */
  users?: ClusterUser[];
  /** directory with etcd, kube-apiserver and kube-controller-manager; built or reused when absent */
  binDir?: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const buildScript = resolve(here, '../cluster/build.sh');

/** The cached control plane binaries: builds them on the first run on a machine (minutes), reuses them after. */
export function controlPlaneBinaries(): string {
  const fromEnv = process.env.ROLLHOOK_CONTROL_PLANE_BIN;
  if (fromEnv) return checkBinaries(fromEnv);
  const res = spawnSync('bash', [buildScript], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (res.error || res.status !== 0) {
    const stderr = (res.stderr ?? '').trim().split('\n').slice(-20).join('\n');
    throw new Error(
      `test control plane: ${buildScript} failed (exit ${res.status ?? String(res.error)}):\n${stderr}`,
    );
  }
  const lines = res.stdout.trim().split('\n');
  return checkBinaries(lines[lines.length - 1] ?? '');
}

function checkBinaries(dir: string): string {
  for (const b of ['etcd', 'kube-apiserver', 'kube-controller-manager']) {
    if (!existsSync(join(dir, b)))
      throw new Error(
        `test control plane: ${join(dir, b)} is missing; run 'bash test/cluster/build.sh' (needs Go 1.26+)`,
      );
  }
  return dir;
}

function httpsGet(
  url: string,
  opts: { ca?: string; token?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        ca: opts.ca,
        // Only the controller manager's health port, whose certificate lives in memory, is read without a CA.
        rejectUnauthorized: opts.ca !== undefined,
        headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
        timeout: 2000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Starts etcd, kube-apiserver and kube-controller-manager on free loopback ports; stop() ends them by PID. */
export async function startCluster(opts: StartClusterOptions = {}): Promise<Cluster> {
  const t0 = Date.now();
  const bin = opts.binDir ? checkBinaries(opts.binDir) : controlPlaneBinaries();
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'rollhook-cluster-'));
  mkdirSync(dataDir, { recursive: true });
  const started: Started[] = [];
  const killAll = (): void => {
    for (const p of started)
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  };
  // A test runner killed mid-run must not leave the control plane behind.
  process.once('exit', killAll);
  const stop = async (): Promise<void> => {
    for (const p of [...started].reverse()) await p.stop();
    process.removeListener('exit', killAll);
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    const [etcdPort, peerPort, apiPort, kcmPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const adminToken = randomBytes(24).toString('hex');
    const users = opts.users ?? [];
    const tokenLines = [
      `${adminToken},admin,admin-uid,"system:masters"`,
      ...users.map(
        (u, i) =>
          `${u.token},${u.name},uid-${i + 1}${u.groups?.length ? `,"${u.groups.join(',')}"` : ''}`,
      ),
    ];
    writeFileSync(join(dataDir, 'tokens.csv'), `${tokenLines.join('\n')}\n`, { mode: 0o600 });
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    writeFileSync(join(dataDir, 'sa.key'), privateKey, { mode: 0o600 });

    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const etcd = startProcess(
      'etcd',
      join(bin, 'etcd'),
      [
        '--name=default',
        `--data-dir=${join(dataDir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        '--log-level=warn',
        '--unsafe-no-fsync',
      ],
      { logFile: join(dataDir, 'etcd.log') },
    );
    started.push(etcd);
    await waitUntil(
      'etcd',
      async () => {
        const res = await fetch(`${etcdUrl}/health`);
        return res.ok && (await res.text()).includes('"health":"true"');
      },
      { timeoutMs: 30_000, proc: etcd },
    );

    const certDir = join(dataDir, 'certs');
    const server = `https://127.0.0.1:${apiPort}`;
    const apiserver = startProcess(
      'kube-apiserver',
      join(bin, 'kube-apiserver'),
      [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--cert-dir=${certDir}`,
        // Without a default route the apiserver cannot pick an address to advertise and exits;
        // loopback is refused, so advertise a TEST-NET address nothing connects to, and keep
        // the endpoint reconciler from publishing it.
        '--advertise-address=192.0.2.10',
        '--endpoint-reconciler-type=none',
        `--token-auth-file=${join(dataDir, 'tokens.csv')}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${join(dataDir, 'sa.key')}`,
        `--service-account-signing-key-file=${join(dataDir, 'sa.key')}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--disable-admission-plugins=ServiceAccount',
        // Deployments are watched straight from etcd, so a test can expire a watch for real by
        // compacting etcd history (the watch cache would keep serving the old revision).
        '--watch-cache-sizes=deployments.apps#0',
        '--enable-priority-and-fairness=false',
        '--profiling=false',
      ],
      { logFile: join(dataDir, 'kube-apiserver.log') },
    );
    started.push(apiserver);
    const certFile = join(certDir, 'apiserver.crt');
    let caPem = '';
    await waitUntil(
      'kube-apiserver',
      async () => {
        if (!existsSync(certFile)) return false;
        caPem = readFileSync(certFile, 'utf8');
        const res = await httpsGet(`${server}/readyz`, { ca: caPem, token: adminToken });
        return res.status === 200 && res.body.trim() === 'ok';
      },
      { timeoutMs: 90_000, proc: apiserver },
    );

    const kubeconfigPath = join(dataDir, 'kubeconfig.yaml');
    writeFileSync(kubeconfigPath, kubeconfigYaml(server, caPem, adminToken, users), {
      mode: 0o600,
    });

    const kcm = startProcess(
      'kube-controller-manager',
      join(bin, 'kube-controller-manager'),
      [
        `--kubeconfig=${kubeconfigPath}`,
        '--controllers=deployment-controller,replicaset-controller,garbage-collector-controller',
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        `--secure-port=${kcmPort}`,
        `--cert-dir=${join(dataDir, 'kcm-certs')}`,
        // The default 20 qps throttles a burst of status updates and would show up as rollout latency.
        '--kube-api-qps=200',
        '--kube-api-burst=400',
      ],
      { logFile: join(dataDir, 'kube-controller-manager.log') },
    );
    started.push(kcm);
    await waitUntil(
      'kube-controller-manager',
      async () => {
        const res = await httpsGet(`https://127.0.0.1:${kcmPort}/healthz`, {});
        return res.status === 200;
      },
      { timeoutMs: 60_000, proc: kcm },
    );

    return {
      kubeconfigPath,
      server,
      adminToken,
      etcdUrl,
      caPem,
      dataDir,
      startSeconds: (Date.now() - t0) / 1000,
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

function kubeconfigYaml(
  server: string,
  caPem: string,
  adminToken: string,
  users: ClusterUser[],
): string {
  const all = [{ name: 'admin', token: adminToken }, ...users];
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'admin',
    clusters: [
      {
        name: 'rollhook-test',
        cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') },
      },
    ],
    users: all.map((u) => ({ name: u.name, user: { token: u.token } })),
    contexts: all.map((u) => ({
      name: u.name,
      context: { cluster: 'rollhook-test', user: u.name },
    })),
  });
}

/** The last lines of each control plane log, for a failure message. */
export function clusterLogs(dataDir: string): string {
  return ['etcd', 'kube-apiserver', 'kube-controller-manager']
    .map((n) => `--- ${n}\n${tail(join(dataDir, `${n}.log`), 15)}`)
    .join('\n');
}

/** A Deployment for tests: `app=<name>` labels, a short progress deadline so a bad image fails fast. */
export function testDeployment(
  name: string,
  opts: {
    containers: Record<string, string>;
    replicas?: number;
    progressDeadlineSeconds?: number;
    paused?: boolean;
  },
): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { app: name } },
    spec: {
      replicas: opts.replicas ?? 3,
      progressDeadlineSeconds: opts.progressDeadlineSeconds ?? 10,
      paused: opts.paused ?? false,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: Object.entries(opts.containers).map(([n, image]) => ({ name: n, image })),
        },
      },
    },
  };
}

/** Admin clients on the test cluster, for setting up what a test needs. */
export function adminClients(kubeconfigPath: string): {
  kc: KubeConfig;
  apps: AppsV1Api;
  core: CoreV1Api;
  rbac: RbacAuthorizationV1Api;
} {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return {
    kc,
    apps: kc.makeApiClient(AppsV1Api),
    core: kc.makeApiClient(CoreV1Api),
    rbac: kc.makeApiClient(RbacAuthorizationV1Api),
  };
}

/** A fresh namespace with a unique name, so tests sharing the cluster do not see each other. */
export async function createTestNamespace(core: CoreV1Api, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}
