/**
 * `npm run sandbox`: rollhook and everything it talks to, on loopback, in one command.
 *
 * Starts Redis, the registry with token auth, the Kubernetes control plane with the Pod
 * readiness stand-in, the GitLab contract server and rollhook itself; creates a sample
 * namespace and Deployment and pushes its images; writes `.sandbox/env.json` for scripts;
 * prints how to trigger a deploy; runs until Ctrl-C and then stops everything it started.
 *
 *   node scripts/sandbox.ts [--config FILE]
 *
 * With --config, rollhook runs with that file instead of the generated one. The sandbox's
 * services are in the environment for its `${…}`s: ROLLHOOK_SANDBOX_REDIS_URL,
 * ROLLHOOK_SANDBOX_GITLAB_URL, ROLLHOOK_SANDBOX_GITLAB_TOKEN, ROLLHOOK_SANDBOX_REGISTRY_HOST,
 * ROLLHOOK_SANDBOX_REGISTRY_URL, ROLLHOOK_SANDBOX_REGISTRY_USERNAME,
 * ROLLHOOK_SANDBOX_REGISTRY_PASSWORD, ROLLHOOK_SANDBOX_WEBHOOK_SECRET, and KUBECONFIG (context
 * `rollhook` is a user bound to rollhook's Role in the sample namespace). rollhook's log
 * shows values taken from the environment as [redacted], as it does every secret.
 *
 * ROLLHOOK_SANDBOX_DIR moves `.sandbox` elsewhere (tests use a temp dir).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ApiException, type V1ClusterRole } from '@kubernetes/client-node';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { ConfigError } from '../src/config/errors.ts';
import { loadConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/schema.ts';
import { API_BASE } from '../src/http/api/router.ts';
import { DASHBOARD_PATH } from '../src/http/dashboard.ts';
import {
  adminClients,
  controlPlaneBinaries,
  startCluster,
  testDeployment,
} from '../test/support/cluster.ts';
import { startGitLabContract } from '../test/support/gitlab-contract.ts';
import { registryImageId } from '../test/support/image-id.ts';
import { pipelineHook } from '../test/support/payloads.ts';
import { startPodReadiness } from '../test/support/pod-readiness.ts';
import {
  freePort,
  startProcess,
  tail,
  waitUntil,
  type Started,
} from '../test/support/processes.ts';
import { startRedis } from '../test/support/redis.ts';
import { pushRandomImage, startRegistry, tagImage } from '../test/support/registry.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The sample the sandbox sets up: one GitLab project deploying one Deployment. */
const SAMPLE = {
  name: 'demo',
  projectId: 42,
  projectPath: 'sandbox/demo',
  ref: 'main',
  namespace: 'sandbox',
  deployment: 'demo',
  container: 'app',
  repositoryPath: 'sandbox/demo/app-prod',
  replicas: 3,
  // Short, so the broken image fails its rollout (and is rolled back) within seconds.
  progressDeadlineSeconds: 15,
} as const;

/** What `.sandbox/env.json` holds, for scripts and tests that drive the sandbox. */
export interface SandboxEnv {
  webhookUrl: string;
  apiUrl: string;
  apiToken: string | null;
  dashboardUrl: string;
  dashboardUser: string | null;
  dashboardPassword: string | null;
  redisUrl: string;
  kubeconfig: string;
  registry: { url: string; username: string; password: string };
  gitlabUrl: string;
  targets: {
    name: string;
    projectId: number;
    projectPath: string;
    ref: string;
    webhookSecret: string;
    namespace: string;
    deployment: string;
    container: string;
    /** the image repository as the config and the Deployment name it: `host:port/path` */
    repository: string;
    /** commits whose `prod-<sha>` images exist, the one running at start first */
    shas: string[];
    /** a commit whose `prod-<sha>` image exists but never becomes Ready */
    brokenSha: string;
  }[];
}

/** Files and folders the sandbox owns in its directory; anything else there is left alone. */
const OWNED = ['env.json', 'rollhook.yaml', 'rollhook.log', 'sandbox.pid', 'cluster', 'hooks'];

class SandboxError extends Error {
  override readonly name = 'SandboxError';
}

const say = (line: string): void => {
  process.stderr.write(`sandbox: ${line}\n`);
};

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function secret(bytes = 18): string {
  return randomBytes(bytes).toString('base64url');
}

function fakeSha(): string {
  return randomBytes(20).toString('hex');
}

/** Refuses a second sandbox on the same directory; clears what a previous one left. */
function claimDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const pidFile = join(dir, 'sandbox.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new SandboxError(
        `a sandbox (pid ${pid}) already runs in ${dir}; stop it with Ctrl-C there, or set ROLLHOOK_SANDBOX_DIR to another directory`,
      );
    }
  }
  for (const f of OWNED) rmSync(join(dir, f), { recursive: true, force: true });
  writeFileSync(pidFile, `${process.pid}\n`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The ClusterRole of k8s/base/rbac.yaml, so the sandbox's rollhook has exactly the rights the manifests give it. */
function rollhookClusterRole(): V1ClusterRole {
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'k8s/base/rbac.yaml'), 'utf8')).map(
    (d) => d.toJS() as { kind?: string },
  );
  const role = docs.find((d) => d.kind === 'ClusterRole');
  if (!role) throw new SandboxError('k8s/base/rbac.yaml holds no ClusterRole');
  return role as V1ClusterRole;
}

async function ignoreConflict(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof ApiException && err.code === 409)) throw err;
  }
}

async function waitForRollout(
  apps: ReturnType<typeof adminClients>['apps'],
  namespace: string,
  name: string,
  replicas: number,
): Promise<void> {
  await waitUntil(
    `Deployment ${namespace}/${name}`,
    async () => {
      const d = await apps.readNamespacedDeployment({ name, namespace });
      const s = d.status;
      return (
        (s?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1) &&
        s?.updatedReplicas === replicas &&
        s.availableReplicas === replicas &&
        (s.replicas ?? 0) === replicas
      );
    },
    { timeoutMs: 60_000 },
  );
}

/** Stand-ins for the ROLLHOOK_SANDBOX_* variables, to check a user's config before anything starts. */
const PLACEHOLDERS: NodeJS.ProcessEnv = {
  KUBECONFIG: '/dev/null',
  ROLLHOOK_SANDBOX_REDIS_URL: 'redis://127.0.0.1:1',
  ROLLHOOK_SANDBOX_GITLAB_URL: 'http://127.0.0.1:1',
  ROLLHOOK_SANDBOX_GITLAB_TOKEN: 'placeholder-token',
  ROLLHOOK_SANDBOX_REGISTRY_HOST: '127.0.0.1:1',
  ROLLHOOK_SANDBOX_REGISTRY_URL: 'http://127.0.0.1:1',
  ROLLHOOK_SANDBOX_REGISTRY_USERNAME: 'placeholder',
  ROLLHOOK_SANDBOX_REGISTRY_PASSWORD: 'placeholder-password',
  ROLLHOOK_SANDBOX_WEBHOOK_SECRET: 'placeholder-secret',
};

function checkConfig(file: string, sandboxEnv: NodeJS.ProcessEnv): Config {
  try {
    return loadConfig(file, { ...process.env, ...sandboxEnv });
  } catch (err) {
    if (err instanceof ConfigError) throw new SandboxError(err.message);
    throw err;
  }
}

/** server.port of a config file when it is a number other than 0. */
function fixedPort(file: string): number | undefined {
  try {
    const raw = parse(readFileSync(file, 'utf8')) as { server?: { port?: unknown } } | null;
    const p = raw?.server?.port;
    return typeof p === 'number' && p > 0 ? p : undefined;
  } catch {
    return undefined; // loadConfig reports a broken file properly
  }
}

/** The port rollhook logged when it started listening (its config may say 0). */
function listeningPort(logFile: string): number | undefined {
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('"message":"listening"')) continue;
    try {
      const entry = JSON.parse(line) as { port?: unknown };
      if (typeof entry.port === 'number') return entry.port;
    } catch {
      // not a JSON line
    }
  }
  return undefined;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function curlCommand(
  webhookUrl: string,
  webhookSecret: string,
  payloadFile: string,
): string {
  return [
    'curl -sS -X POST',
    shellQuote(webhookUrl),
    "-H 'Content-Type: application/json' -H 'X-Gitlab-Event: Pipeline Hook'",
    `-H ${shellQuote(`X-Gitlab-Token: ${webhookSecret}`)}`,
    `--data-binary @${shellQuote(payloadFile)}`,
  ].join(' ');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write('usage: npm run sandbox [-- --config FILE]\n');
    return;
  }
  const userConfig = values.config ? resolve(values.config) : undefined;
  if (userConfig && !existsSync(userConfig))
    throw new SandboxError(`--config ${values.config}: no such file`);
  const dir = resolve(process.env.ROLLHOOK_SANDBOX_DIR ?? join(ROOT, '.sandbox'));
  const t0 = Date.now();
  // A broken config fails now, not after the control plane has started.
  if (userConfig) checkConfig(userConfig, PLACEHOLDERS);

  claimDir(dir);
  const stops: { name: string; stop: () => Promise<void> }[] = [];
  const children: Started[] = [];
  // However this process ends, no server it started outlives it (the control plane's harness does the same).
  process.once('exit', () => {
    for (const c of children)
      if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  });
  const tempDirs: string[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = (): Promise<void> =>
    (stopping ??= (async () => {
      for (const s of stops.reverse()) {
        await s
          .stop()
          .catch((err: unknown) =>
            say(`stopping ${s.name}: ${err instanceof Error ? err.message : String(err)}`),
          );
      }
      for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
      // Left behind, env.json would describe servers that are gone.
      for (const f of ['env.json', 'sandbox.pid', 'cluster'])
        rmSync(join(dir, f), { recursive: true, force: true });
    })());

  let forced = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      if (!forced) {
        forced = true;
        say('stopping already; once more to kill everything at once');
        return;
      }
      for (const s of stops) void s.stop();
      process.exit(130);
    }
    say(`${signal}: stopping everything the sandbox started…`);
    void stopAll().then(() => {
      say('stopped');
      process.exit(0);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    say('starting Redis, the registry (token auth) and the Kubernetes control plane…');
    const redis = await startRedis();
    children.push(redis.proc);
    stops.push({ name: 'redis', stop: () => redis.proc.stop() });
    tempDirs.push(dirname(redis.proc.logFile));

    const registry = await startRegistry();
    children.push(registry.proc);
    stops.push({ name: 'registry', stop: () => registry.stop() });
    tempDirs.push(dirname(registry.configPath));
    const registryCreds = registry.users.admin;

    const rollhookKubeUser = { name: 'rollhook', token: secret(24) };
    const cluster = await startCluster({
      dataDir: join(dir, 'cluster'),
      users: [rollhookKubeUser],
    });
    stops.push({ name: 'control plane', stop: () => cluster.stop() });
    say(`control plane ready in ${cluster.startSeconds.toFixed(1)} s`);

    // prod runs the first; the printed curl deploys the second; the third is for a redeploy
    // with the CLI, after which a rollback returns to the second (kept: keepReleases 1).
    const shas = [fakeSha(), fakeSha(), fakeSha()] as const;
    const brokenSha = fakeSha();
    const pods = await startPodReadiness(cluster.kubeconfigPath, {
      // The kubelet stand-in never readies the broken release, nor any tag saying `broken`.
      neverReady: new RegExp(`:[^/@]*(${brokenSha}|broken)`),
      imageId: registryImageId({ url: registry.url, host: registry.host, creds: registryCreds }),
    });
    stops.push({ name: 'pod readiness', stop: () => pods.stop() });

    say('pushing sample images and creating the sample Deployment…');
    for (const sha of [...shas, brokenSha])
      await pushRandomImage(registry.url, registryCreds, SAMPLE.repositoryPath, `prod-${sha}`);
    await tagImage(registry.url, registryCreds, SAMPLE.repositoryPath, `prod-${shas[0]}`, 'prod');
    const repository = `${registry.host}/${SAMPLE.repositoryPath}`;
    const { apps, core, rbac } = adminClients(cluster.kubeconfigPath);
    await core.createNamespace({ body: { metadata: { name: SAMPLE.namespace } } });
    const role = rollhookClusterRole();
    await ignoreConflict(rbac.createClusterRole({ body: role }));
    await rbac.createNamespacedRoleBinding({
      namespace: SAMPLE.namespace,
      body: {
        metadata: { name: 'rollhook-deployer' },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: role.metadata?.name ?? '',
        },
        subjects: [
          { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: rollhookKubeUser.name },
        ],
      },
    });
    await apps.createNamespacedDeployment({
      namespace: SAMPLE.namespace,
      body: testDeployment(SAMPLE.deployment, {
        containers: { [SAMPLE.container]: `${repository}:prod-${shas[0]}` },
        replicas: SAMPLE.replicas,
        progressDeadlineSeconds: SAMPLE.progressDeadlineSeconds,
      }),
    });
    await waitForRollout(apps, SAMPLE.namespace, SAMPLE.deployment, SAMPLE.replicas);

    // GitLab (the contract server) delivers hooks to rollhook's port, so it is chosen first; a
    // user's config that names a fixed port gets the hooks there.
    const port = (userConfig ? fixedPort(userConfig) : undefined) ?? (await freePort());
    const base = `http://127.0.0.1:${port}`;
    const webhookSecret = secret();
    const gitlabToken = `glpat-${secret(15)}`;
    const gitlab = await startGitLabContract({
      token: gitlabToken,
      projects: [
        {
          id: SAMPLE.projectId,
          path_with_namespace: SAMPLE.projectPath,
          refs: [SAMPLE.ref],
          commits: [...shas, brokenSha].map((sha) => ({ sha, refs: [SAMPLE.ref] })),
          pipelines: [
            ...shas.map((sha, i) => ({
              // 101, 102, then 104: the broken pipeline (103) comes between, so the third release,
              // deployed after it, is the newer pipeline.
              id: [101, 102, 104][i] ?? 105 + i,
              sha,
              ref: SAMPLE.ref,
              status: 'success' as const,
              source: 'push',
            })),
            // Still running as far as the API knows, so a manual deploy of `main` picks the good release.
            {
              id: 103,
              sha: brokenSha,
              ref: SAMPLE.ref,
              status: 'running' as const,
              source: 'push',
            },
          ],
        },
      ],
      // As a GitLab project webhook would: deployments and commit statuses rollhook causes come back as hooks.
      webhook: { url: `${base}/webhooks/gitlab`, token: webhookSecret },
    });
    stops.push({ name: 'GitLab contract server', stop: () => gitlab.stop() });

    const sandboxEnv: NodeJS.ProcessEnv = {
      KUBECONFIG: cluster.kubeconfigPath,
      ROLLHOOK_SANDBOX_REDIS_URL: redis.url,
      ROLLHOOK_SANDBOX_GITLAB_URL: gitlab.url,
      ROLLHOOK_SANDBOX_GITLAB_TOKEN: gitlabToken,
      ROLLHOOK_SANDBOX_REGISTRY_HOST: registry.host,
      ROLLHOOK_SANDBOX_REGISTRY_URL: registry.url,
      ROLLHOOK_SANDBOX_REGISTRY_USERNAME: registryCreds.username,
      ROLLHOOK_SANDBOX_REGISTRY_PASSWORD: registryCreds.password,
      ROLLHOOK_SANDBOX_WEBHOOK_SECRET: webhookSecret,
    };

    const apiToken = `rh_${secret(24)}`;
    const dashboardUser = 'admin';
    const dashboardPassword = secret(12);
    const configFile = userConfig ?? join(dir, 'rollhook.yaml');
    if (!userConfig) {
      writeFileSync(
        configFile,
        generatedConfig({
          port,
          base,
          redisUrl: redis.url,
          gitlabUrl: gitlab.url,
          registry: { host: registry.host, url: registry.url, username: registryCreds.username },
          apiToken,
          dashboardUser,
          dashboardPassword,
        }),
        { mode: 0o600 },
      );
    }
    const config = checkConfig(configFile, sandboxEnv);

    say(`starting rollhook (node src/main.ts --config ${configFile})…`);
    const rollhook: Started = startProcess(
      'rollhook',
      process.execPath,
      ['src/main.ts', '--config', configFile],
      {
        logFile: join(dir, 'rollhook.log'),
        cwd: ROOT,
        env: { ...process.env, ...sandboxEnv },
      },
    );
    children.push(rollhook);
    stops.push({ name: 'rollhook', stop: () => rollhook.stop() });
    let actualPort = 0;
    await waitUntil(
      'rollhook',
      async () => {
        actualPort = listeningPort(rollhook.logFile) ?? 0;
        return actualPort > 0 && (await fetch(`http://127.0.0.1:${actualPort}/readyz`)).ok;
      },
      { timeoutMs: 30_000, proc: rollhook },
    );
    const rollhookUrl = `http://127.0.0.1:${actualPort}`;

    const hooksDir = join(dir, 'hooks');
    mkdirSync(hooksDir, { recursive: true });
    const payloadFile = (sha: string, pipelineId: number): string => {
      const payload = pipelineHook(
        {
          id: pipelineId,
          sha,
          ref: SAMPLE.ref,
          url: `${gitlab.url}/${SAMPLE.projectPath}/-/pipelines/${pipelineId}`,
        },
        { id: SAMPLE.projectId, path_with_namespace: SAMPLE.projectPath },
      );
      payload.commit = {
        ...(payload.commit as Record<string, unknown>),
        id: sha,
        url: `${gitlab.url}/${SAMPLE.projectPath}/-/commit/${sha}`,
      };
      const file = join(hooksDir, `pipeline-${pipelineId}-${sha.slice(0, 8)}.json`);
      writeFileSync(file, `${JSON.stringify(payload, null, 2)}\n`);
      return file;
    };
    const deployFile = payloadFile(shas[1], 102);
    const brokenFile = payloadFile(brokenSha, 103);

    // In a user's config, the targets that deploy the sample Deployment are the sample's.
    const sampleTargets = config.targets.filter(
      (t) =>
        t.kubernetes.namespace === SAMPLE.namespace &&
        t.kubernetes.deployment === SAMPLE.deployment,
    );
    const env: SandboxEnv = {
      webhookUrl: `${rollhookUrl}/webhooks/gitlab`,
      apiUrl: `${rollhookUrl}${API_BASE}`,
      apiToken: userConfig ? null : apiToken,
      dashboardUrl: `${rollhookUrl}${DASHBOARD_PATH}`,
      dashboardUser: userConfig ? (config.dashboard.users[0]?.name ?? null) : dashboardUser,
      dashboardPassword: userConfig ? null : dashboardPassword,
      redisUrl: config.redis.url,
      kubeconfig: cluster.kubeconfigPath,
      registry: {
        url: registry.url,
        username: registryCreds.username,
        password: registryCreds.password,
      },
      gitlabUrl: gitlab.url,
      targets: sampleTargets.map((t) => ({
        name: t.name,
        projectId: SAMPLE.projectId,
        projectPath: SAMPLE.projectPath,
        ref: SAMPLE.ref,
        webhookSecret: t.gitlab.webhookSecret,
        namespace: SAMPLE.namespace,
        deployment: SAMPLE.deployment,
        container: SAMPLE.container,
        repository,
        shas: [...shas],
        brokenSha,
      })),
    };
    writeFileSync(join(dir, 'env.json'), `${JSON.stringify(env, null, 2)}\n`, { mode: 0o600 });

    const kubectl = join(controlPlaneBinaries(), 'kubectl');
    const hookSecret = env.targets[0]?.webhookSecret ?? webhookSecret;
    const login = env.dashboardPassword
      ? `user ${env.dashboardUser}, password ${env.dashboardPassword}`
      : 'a dashboard user of your config';
    process.stdout.write(
      [
        '',
        `rollhook sandbox is up (${((Date.now() - t0) / 1000).toFixed(1)} s). Ctrl-C stops everything.`,
        `Deploy ${shas[1].slice(0, 8)} (a green pipeline on ${SAMPLE.ref}) to ${SAMPLE.namespace}/${SAMPLE.deployment}:`,
        `  ${curlCommand(env.webhookUrl, hookSecret, deployFile)}`,
        `A rollout that fails and is rolled back: the same with --data-binary @${brokenFile}`,
        `Then, with the CLI: export ROLLHOOK_URL=${env.apiUrl} ROLLHOOK_TOKEN=${env.apiToken ?? '<a token of your config>'}`,
        `  npx rollhook deploy ${env.targets[0]?.name ?? SAMPLE.name} --sha ${shas[2]} --wait    # deploy another release`,
        `  npx rollhook rollback ${env.targets[0]?.name ?? SAMPLE.name} --wait                     # back to the previous one`,
        `  npx rollhook status; npx rollhook history ${env.targets[0]?.name ?? SAMPLE.name}`,
        `Dashboard: ${env.dashboardUrl} (${login})`,
        `Kubeconfig: ${cluster.kubeconfigPath}  e.g. ${kubectl} --kubeconfig ${cluster.kubeconfigPath} -n ${SAMPLE.namespace} get deploy,rs,pods`,
        `Everything else (API token, registry, GitLab calls at ${gitlab.url}/-/calls): ${join(dir, 'env.json')}; rollhook's log: ${rollhook.logFile}`,
        '',
      ].join('\n'),
    );

    rollhook.child.once('exit', (code, signal) => {
      if (stopping) return;
      say(
        `rollhook exited (${code ?? signal}); its log ${rollhook.logFile} ends:\n${tail(rollhook.logFile)}`,
      );
      void stopAll().then(() => process.exit(1));
    });
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * rollhook's config for the sandbox. Secrets are `${…}`s from the environment, as in
 * production; addresses are written as they are (values from the environment count as
 * secrets and would show as [redacted] in rollhook's log).
 */
function generatedConfig(o: {
  port: number;
  base: string;
  redisUrl: string;
  gitlabUrl: string;
  registry: { host: string; url: string; username: string };
  apiToken: string;
  dashboardUser: string;
  dashboardPassword: string;
}): string {
  const config = {
    server: { port: o.port, host: '127.0.0.1', publicUrl: o.base, shutdownTimeout: '5s' },
    redis: { url: o.redisUrl, prefix: 'rollhook' },
    gitlab: { url: o.gitlabUrl, token: '${ROLLHOOK_SANDBOX_GITLAB_TOKEN}' },
    registries: [
      {
        host: o.registry.host,
        url: o.registry.url,
        username: o.registry.username,
        password: '${ROLLHOOK_SANDBOX_REGISTRY_PASSWORD}',
      },
    ],
    api: {
      tokens: [
        {
          name: 'sandbox',
          sha256: sha256(o.apiToken),
          targets: ['*'],
          actions: ['read', 'deploy', 'rollback'],
        },
      ],
    },
    dashboard: { users: [{ name: o.dashboardUser, passwordSha256: sha256(o.dashboardPassword) }] },
    // Role all serves /metrics on server.port; no second listener to collide with.
    metrics: { port: 0 },
    worker: { concurrency: 2, lockTtl: '10s' },
    targets: [
      {
        name: SAMPLE.name,
        gitlab: {
          project: SAMPLE.projectPath,
          webhookSecret: '${ROLLHOOK_SANDBOX_WEBHOOK_SECRET}',
          refs: [SAMPLE.ref],
        },
        environment: { name: 'production', tier: 'production' },
        kubernetes: {
          context: 'rollhook',
          namespace: SAMPLE.namespace,
          deployment: SAMPLE.deployment,
          containers: { [SAMPLE.container]: `${o.registry.host}/${SAMPLE.repositoryPath}` },
        },
        images: {
          tag: 'prod-{sha}',
          promoteTo: 'prod',
          deleteSuperseded: true,
          deleteOnFailure: true,
          // one earlier release stays, so `rollhook rollback` has an image to return to
          keepReleases: 1,
          waitForImage: '10s',
        },
        rollout: { timeout: '2m', rollbackOnFailure: true },
        commitStatus: true,
      },
    ],
  };
  return [
    '# Generated by `npm run sandbox` for this run (ports change every run). For your own config,',
    '# read the services from ROLLHOOK_SANDBOX_* variables (see scripts/sandbox.ts), then:',
    '#   npm run sandbox -- --config YOUR-FILE',
    stringify(config),
  ].join('\n');
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    say(
      err instanceof SandboxError
        ? err.message
        : `failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    process.exit(1);
  });
}
