import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClients } from '../support/cluster.ts';
import { resolve as resolveTag, type Credentials } from '../support/registry.ts';
import { spawnNode, waitForOutput, type RollhookProcess } from '../support/spawn-rollhook.ts';

/**
 * `npm run sandbox` as a newcomer runs it (scripts/sandbox.ts, after the install step):
 * it comes up, writes env.json as the issue specifies, and the curl it prints ends in a
 * rollout in the sandbox cluster, `prod` promoted and the old image deleted, visible in the
 * dashboard; the broken release fails and is rolled back; Ctrl-C stops everything.
 */

const envSchema = z.strictObject({
  webhookUrl: z.url(),
  apiUrl: z.url(),
  apiToken: z.string().min(20).nullable(),
  dashboardUrl: z.url(),
  dashboardUser: z.string().nullable(),
  dashboardPassword: z.string().min(8).nullable(),
  redisUrl: z.string().startsWith('redis://127.0.0.1:'),
  kubeconfig: z.string().startsWith('/'),
  registry: z.strictObject({ url: z.url(), username: z.string(), password: z.string() }),
  gitlabUrl: z.url(),
  targets: z.array(
    z.strictObject({
      name: z.string(),
      projectId: z.number().int(),
      projectPath: z.string(),
      ref: z.string(),
      webhookSecret: z.string().min(8),
      namespace: z.string(),
      deployment: z.string(),
      container: z.string(),
      repository: z.string(),
      shas: z.array(z.string().regex(/^[0-9a-f]{40}$/)).length(3),
      brokenSha: z.string().regex(/^[0-9a-f]{40}$/),
    }),
  ),
});
type SandboxEnv = z.infer<typeof envSchema>;

const jobSchema = z.looseObject({
  state: z.string(),
  result: z.looseObject({ outcome: z.string() }).nullable(),
  error: z.string().nullable(),
});

interface Sandbox {
  dir: string;
  proc: RollhookProcess;
  env: SandboxEnv;
}

const dirs: string[] = [];
const running: RollhookProcess[] = [];

async function startSandbox(args: string[] = []): Promise<Sandbox> {
  const dir = mkdtempSync(join(tmpdir(), 'rollhook-sandbox-'));
  dirs.push(dir);
  const proc = spawnNode('scripts/sandbox.ts', args, { ROLLHOOK_SANDBOX_DIR: dir });
  running.push(proc);
  await waitForOutput(proc, /rollhook sandbox is up/, 150_000);
  return {
    dir,
    proc,
    env: envSchema.parse(JSON.parse(readFileSync(join(dir, 'env.json'), 'utf8'))),
  };
}

async function stopSandbox(
  s: Sandbox,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  s.proc.kill('SIGINT');
  return s.proc.exited;
}

/** The printed lines that run a command, as a user would copy them. */
function printedCurl(out: string): string {
  const line = out.split('\n').find((l) => l.trim().startsWith('curl '));
  if (!line) throw new Error(`no curl command printed:\n${out}`);
  return line.trim();
}

function runCurl(command: string): { status: number; body: Record<string, unknown> } {
  const res = spawnSync('bash', ['-c', `${command} -w '\\n%{http_code}'`], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  if (res.status !== 0) throw new Error(`curl failed (${res.status}): ${res.stderr}`);
  const lines = res.stdout.trim().split('\n');
  return {
    status: Number(lines.pop()),
    body: JSON.parse(lines.join('\n')) as Record<string, unknown>,
  };
}

async function job(
  env: SandboxEnv,
  id: string,
  until: string[],
): Promise<z.infer<typeof jobSchema>> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const res = await fetch(`${env.apiUrl}/jobs/${id}`, {
      headers: { authorization: `Bearer ${env.apiToken}` },
    });
    const body = res.ok ? jobSchema.parse(await res.json()) : undefined;
    if (body && until.includes(body.state)) return body;
    if (Date.now() > deadline) throw new Error(`job ${id}: ${res.status} ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function repoPath(t: SandboxEnv['targets'][number]): string {
  return t.repository.slice(t.repository.indexOf('/') + 1);
}

async function deploymentImage(env: SandboxEnv): Promise<string | undefined> {
  const t = env.targets[0]!;
  const d = await adminClients(env.kubeconfig).apps.readNamespacedDeployment({
    name: t.deployment,
    namespace: t.namespace,
  });
  return d.spec?.template.spec?.containers.find((c) => c.name === t.container)?.image;
}

afterAll(async () => {
  for (const p of running)
    if (p.child.exitCode === null && p.child.signalCode === null) p.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('npm run sandbox', () => {
  let s: Sandbox;
  let creds: Credentials;

  beforeAll(async () => {
    s = await startSandbox();
    creds = { username: s.env.registry.username, password: s.env.registry.password };
  }, 180_000);

  it('writes env.json with the services, credentials and the sample target', async () => {
    const t = s.env.targets[0]!;
    expect(s.env.targets).toHaveLength(1);
    expect(s.env.webhookUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/webhooks\/gitlab$/);
    expect(new URL(s.env.apiUrl).origin).toBe(new URL(s.env.webhookUrl).origin);
    expect(s.env.apiToken).not.toBeNull();
    expect(t.shas).not.toContain(t.brokenSha);
    // Every address is on loopback.
    for (const u of [
      s.env.webhookUrl,
      s.env.apiUrl,
      s.env.dashboardUrl,
      s.env.registry.url,
      s.env.gitlabUrl,
    ])
      expect(new URL(u).hostname).toBe('127.0.0.1');
    // The releases exist in the registry; the first runs in the cluster and is prod.
    const digests = await Promise.all(
      [...t.shas, t.brokenSha].map((sha) =>
        resolveTag(s.env.registry.url, creds, repoPath(t), `prod-${sha}`),
      ),
    );
    expect(digests.every((d) => d?.startsWith('sha256:'))).toBe(true);
    expect(await resolveTag(s.env.registry.url, creds, repoPath(t), 'prod')).toBe(digests[0]);
    expect(await deploymentImage(s.env)).toBe(`${t.repository}:prod-${t.shas[0]}`);
    // The file holds credentials: readable by its owner only.
    expect(
      spawnSync('stat', ['-c', '%a', join(s.dir, 'env.json')], { encoding: 'utf8' }).stdout.trim(),
    ).toBe('600');
  });

  it('prints a curl that deploys: rollout done, prod promoted, the old image deleted, GitLab told, visible in the dashboard', async () => {
    const t = s.env.targets[0]!;
    const [old, next] = t.shas as [string, string];
    const oldDigest = await resolveTag(s.env.registry.url, creds, repoPath(t), `prod-${old}`);
    const nextDigest = await resolveTag(s.env.registry.url, creds, repoPath(t), `prod-${next}`);

    const res = runCurl(printedCurl(s.proc.output()));
    expect(res.status).toBe(202);
    const jobId = (res.body.deploys as { jobId: string }[])[0]!.jobId;
    const done = await job(s.env, jobId, ['completed', 'failed']);
    expect(done).toMatchObject({ state: 'completed', result: { outcome: 'success' } });

    expect(await deploymentImage(s.env)).toBe(`${t.repository}:prod-${next}`);
    expect(await resolveTag(s.env.registry.url, creds, repoPath(t), 'prod')).toBe(nextDigest);
    expect(await resolveTag(s.env.registry.url, creds, repoPath(t), oldDigest!)).toBeNull();

    const calls = z
      .array(
        z.looseObject({
          method: z.string(),
          path: z.string(),
          body: z.unknown().optional(),
          status: z.number(),
        }),
      )
      .parse(await (await fetch(`${s.env.gitlabUrl}/-/calls`)).json());
    const update = calls.find((c) => c.method === 'PUT' && /\/deployments\/\d+$/.test(c.path));
    expect(update).toMatchObject({ status: 200, body: { status: 'success' } });

    const basic = `Basic ${Buffer.from(`${s.env.dashboardUser}:${s.env.dashboardPassword}`).toString('base64')}`;
    expect((await fetch(s.env.dashboardUrl)).status).toBe(401);
    // What the dashboard page shows for the deploy queue's completed jobs.
    const board = await fetch(
      `${s.env.dashboardUrl}/api/queues?activeQueue=deploy&status=completed&page=1`,
      { headers: { authorization: basic } },
    );
    expect(board.status).toBe(200);
    const queues = z
      .object({
        queues: z.array(
          z.looseObject({ name: z.string(), jobs: z.array(z.looseObject({ id: z.string() })) }),
        ),
      })
      .parse(await board.json());
    expect(queues.queues.find((q) => q.name === 'deploy')?.jobs.map((j) => j.id)).toContain(jobId);
  });

  it('rolls the broken release back, keeps prod, and deletes the failed image (the second printed payload)', async () => {
    const t = s.env.targets[0]!;
    const before = await deploymentImage(s.env);
    const prod = await resolveTag(s.env.registry.url, creds, repoPath(t), 'prod');
    const file = /--data-binary @(\S+)$/m.exec(
      s.proc
        .output()
        .split('\n')
        .find((l) => l.startsWith('A rollout that fails')) ?? '',
    )?.[1];
    expect(file && existsSync(file)).toBe(true);
    const command = printedCurl(s.proc.output()).replace(
      /--data-binary @\S+/,
      `--data-binary @${file}`,
    );
    const res = runCurl(command);
    expect(res.status).toBe(202);
    const failed = await job(s.env, (res.body.deploys as { jobId: string }[])[0]!.jobId, [
      'completed',
      'failed',
    ]);
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatch(/ProgressDeadlineExceeded/);
    expect(await deploymentImage(s.env)).toBe(before);
    expect(await resolveTag(s.env.registry.url, creds, repoPath(t), 'prod')).toBe(prod);
    expect(
      await resolveTag(s.env.registry.url, creds, repoPath(t), `prod-${t.brokenSha}`),
    ).toBeNull();
  }, 90_000);

  it('with the printed CLI lines: deploys the third release, then rolls back to the second', async () => {
    const t = s.env.targets[0]!;
    const [, second, third] = t.shas as [string, string, string];
    const cli = async (args: string[]) => {
      const p = spawnNode('bin/rollhook.ts', args, {
        ROLLHOOK_URL: s.env.apiUrl,
        ROLLHOOK_TOKEN: s.env.apiToken ?? '',
      });
      const exit = await p.exited;
      return { code: exit.code, out: p.output() };
    };
    expect(s.proc.output()).toContain(`rollhook deploy ${t.name} --sha ${third} --wait`);
    const deployed = await cli(['deploy', t.name, '--sha', third, '--wait']);
    expect(deployed.code, deployed.out).toBe(0);
    expect(await deploymentImage(s.env)).toBe(`${t.repository}:prod-${third}`);
    // keepReleases 1: the release it superseded stays for the rollback.
    const secondDigest = await resolveTag(s.env.registry.url, creds, repoPath(t), `prod-${second}`);
    expect(secondDigest).toMatch(/^sha256:/);
    const rolledBack = await cli(['rollback', t.name, '--wait']);
    expect(rolledBack.code, rolledBack.out).toBe(0);
    expect(await deploymentImage(s.env)).toBe(`${t.repository}:prod-${second}`);
    expect(await resolveTag(s.env.registry.url, creds, repoPath(t), 'prod')).toBe(secondDigest);
  }, 90_000);

  it('refuses a second sandbox on the same directory', async () => {
    const second = spawnNode('scripts/sandbox.ts', [], { ROLLHOOK_SANDBOX_DIR: s.dir });
    const exit = await second.exited;
    expect(exit.code).toBe(1);
    expect(second.output()).toMatch(/already runs in/);
    // ...and left the running one's files alone.
    expect(existsSync(join(s.dir, 'env.json'))).toBe(true);
  });

  it("keeps every secret out of rollhook's log", () => {
    const log = readFileSync(join(s.dir, 'rollhook.log'), 'utf8');
    expect(log.length).toBeGreaterThan(0);
    for (const secret of [
      s.env.apiToken,
      s.env.dashboardPassword,
      s.env.registry.password,
      s.env.targets[0]!.webhookSecret,
    ])
      expect(log).not.toContain(secret);
  });

  it('stops everything it started on Ctrl-C and removes env.json', async () => {
    const exit = await stopSandbox(s);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(existsSync(join(s.dir, 'env.json'))).toBe(false);
    for (const u of [s.env.webhookUrl, s.env.registry.url, s.env.gitlabUrl]) {
      await expect(fetch(u)).rejects.toThrow();
    }
    // The control plane's data (tokens, etcd) went with it.
    expect(existsSync(join(s.dir, 'cluster'))).toBe(false);
  }, 60_000);
});

describe('npm run sandbox -- --config FILE', () => {
  it("runs the same stack with the user's config, the sandbox's services read from the environment", async () => {
    const own = {
      server: { port: 0, host: '127.0.0.1' },
      redis: { url: '${ROLLHOOK_SANDBOX_REDIS_URL}', prefix: 'mine' },
      gitlab: { url: '${ROLLHOOK_SANDBOX_GITLAB_URL}', token: '${ROLLHOOK_SANDBOX_GITLAB_TOKEN}' },
      registries: [
        {
          host: '${ROLLHOOK_SANDBOX_REGISTRY_HOST}',
          url: '${ROLLHOOK_SANDBOX_REGISTRY_URL}',
          username: '${ROLLHOOK_SANDBOX_REGISTRY_USERNAME}',
          password: '${ROLLHOOK_SANDBOX_REGISTRY_PASSWORD}',
        },
      ],
      dashboard: { users: [{ name: 'me', passwordSha256: 'c'.repeat(64) }] },
      metrics: { port: 0 },
      targets: [
        {
          name: 'mine',
          gitlab: {
            project: 'sandbox/demo',
            webhookSecret: '${ROLLHOOK_SANDBOX_WEBHOOK_SECRET}',
            refs: ['main'],
          },
          kubernetes: {
            context: 'rollhook',
            namespace: 'sandbox',
            deployment: 'demo',
            containers: { app: '${ROLLHOOK_SANDBOX_REGISTRY_HOST}/sandbox/demo/app-prod' },
          },
        },
      ],
    };
    const configDir = mkdtempSync(join(tmpdir(), 'rollhook-own-config-'));
    dirs.push(configDir);
    const file = join(configDir, 'mine.yaml');
    writeFileSync(file, stringify(own));

    const s = await startSandbox(['--config', file]);
    expect(s.proc.output()).toContain(`--config ${file}`);
    expect(existsSync(join(s.dir, 'rollhook.yaml'))).toBe(false);
    expect(s.env.targets.map((t) => t.name)).toEqual(['mine']);
    // Secrets the sandbox did not make, it cannot know.
    expect(s.env).toMatchObject({ apiToken: null, dashboardUser: 'me', dashboardPassword: null });
    const res = runCurl(printedCurl(s.proc.output()));
    expect(res.status).toBe(202);
    expect(res.body.deploys).toEqual([
      expect.objectContaining({ target: 'mine', result: 'queued' }),
    ]);
    expect(await stopSandbox(s)).toEqual({ code: 0, signal: null });
  }, 180_000);

  it('fails at once with the config error, before starting anything', async () => {
    const configDir = mkdtempSync(join(tmpdir(), 'rollhook-bad-config-'));
    dirs.push(configDir);
    const file = join(configDir, 'bad.yaml');
    writeFileSync(file, 'redis: { url: "${ROLLHOOK_SANDBOX_REDIS_URL}" }\ntargets: []\n');
    const dir = mkdtempSync(join(tmpdir(), 'rollhook-sandbox-'));
    dirs.push(dir);
    const p = spawnNode('scripts/sandbox.ts', ['--config', file], { ROLLHOOK_SANDBOX_DIR: dir });
    running.push(p);
    expect((await p.exited).code).toBe(1);
    expect(p.output()).toContain(`invalid config ${file}`);
    expect(p.output()).toContain('targets: configure at least one target');
    expect(p.output()).not.toContain('starting Redis');
    expect(existsSync(join(dir, 'sandbox.pid'))).toBe(false);
  });
});
