import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Config } from '../../src/config/schema.ts';
import { Enqueuer } from '../../src/queue/enqueue.ts';
import type { DeployJobData } from '../../src/queue/jobs.ts';
import { openQueues, type Queues } from '../../src/queue/queues.ts';
import { TargetState } from '../../src/targets/state.ts';
import { testConfig } from '../support/config.ts';
import { randomSha } from '../support/payloads.ts';
import { spawnNode, waitForOutput, type RollhookProcess } from '../support/spawn-rollhook.ts';

let redisUrl: string;
let redis: Redis;
const running: RollhookProcess[] = [];

beforeAll(() => {
  redisUrl = inject('redisUrl');
  redis = new Redis(redisUrl);
});
afterEach(async () => {
  for (const p of running.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.kill('SIGKILL');
      await p.exited;
    }
  }
});
afterAll(async () => {
  await redis.quit();
});

const targets = ['app', 'app-eu'].map((name) => ({
  name,
  gitlab: { project: 'group/app', webhookSecret: `secret-${name}-123`, refs: ['main'] },
  kubernetes: {
    namespace: name,
    deployment: 'app',
    containers: { app: '127.0.0.1:5000/group/app' },
  },
}));

function setup(extra: Partial<Pick<Config, 'worker' | 'server'>> = {}): {
  config: Config;
  queues: Queues;
  enqueuer: Enqueuer;
  state: TargetState;
} {
  const config = testConfig({ redisUrl, targets, ...extra });
  const queues = openQueues({ url: redisUrl, maxRetriesPerRequest: null }, config.redis.prefix);
  const state = new TargetState(redis, config.redis.prefix);
  return { config, queues, state, enqueuer: new Enqueuer(queues, state) };
}

async function startWorker(config: Config, deployMs: number): Promise<RollhookProcess> {
  const p = spawnNode('test/support/worker-process.ts', [], {
    ROLLHOOK_TEST_CONFIG: JSON.stringify(config),
    ROLE: 'worker',
    DEPLOY_MS: String(deployMs),
    LOG_LEVEL: 'warn',
  });
  running.push(p);
  await waitForOutput(p, /READY/);
  return p;
}

function deploy(target: string, pipelineId: number, force = false): DeployJobData {
  return {
    target,
    sha: randomSha(),
    ref: 'main',
    tag: false,
    pipelineId,
    trigger: { kind: 'api', user: 'test' },
    force,
    correlationId: `test-${pipelineId}`,
    requestedAt: new Date().toISOString(),
  };
}

async function waitForJobs(
  queues: Queues,
  ids: string[],
  states: string[] = ['completed'],
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await Promise.all(
      ids.map(async (id) => (await queues.deploy.getJob(id))?.getState()),
    );
    if (got.every((s) => s && states.includes(s))) return;
    if (Date.now() > deadline)
      throw new Error(
        `jobs not ${states.join('/')}: ${ids.map((id, i) => `${id}=${got[i]}`).join(', ')}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Interval {
  target: string;
  jobId: string;
  pid: number;
  start: number;
  end: number;
}

async function intervals(config: Config): Promise<Interval[]> {
  return (await redis.lrange(`${config.redis.prefix}:test:intervals`, 0, -1)).map(
    (s) => JSON.parse(s) as Interval,
  );
}

describe('worker processes', () => {
  it('two processes racing never run two deploys of one target at once', async () => {
    const { config, queues, enqueuer } = setup({ worker: { concurrency: 4, lockTtl: 5000 } });
    await Promise.all([startWorker(config, 300), startWorker(config, 300)]);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      for (const t of ['app', 'app-eu']) {
        const r = await enqueuer.deploy(deploy(t, 100 + i, true));
        if (r.result === 'queued') ids.push(r.jobId);
      }
    }
    expect(ids).toHaveLength(8);
    await waitForJobs(queues, ids);
    const all = await intervals(config);
    expect(all).toHaveLength(8);
    for (const t of ['app', 'app-eu']) {
      const mine = all.filter((x) => x.target === t).sort((a, b) => a.start - b.start);
      for (let i = 1; i < mine.length; i++) {
        expect(
          mine[i]!.start,
          `${t}: ${mine[i]!.jobId} started before ${mine[i - 1]!.jobId} ended`,
        ).toBeGreaterThanOrEqual(mine[i - 1]!.end);
      }
    }
    // Both processes took part: the lock, not luck, kept the deploys apart.
    expect(new Set(all.map((x) => x.pid)).size).toBe(2);
    await queues.close();
  });

  it('queued pipelines of one target collapse to the newest; older ones end as superseded', async () => {
    const { config, queues, enqueuer, state } = setup();
    const ids: string[] = [];
    for (const id of [201, 202, 203]) {
      const r = await enqueuer.deploy(deploy('app', id));
      if (r.result === 'queued') ids.push(r.jobId);
    }
    await startWorker(config, 50);
    await waitForJobs(queues, ids);
    const results = await Promise.all(
      ids.map(async (id) => (await queues.deploy.getJob(id))?.returnvalue as { outcome: string }),
    );
    expect(results.map((r) => r.outcome)).toEqual(['superseded', 'superseded', 'success']);
    expect((await intervals(config)).map((x) => x.jobId)).toEqual(['deploy-app-203']);
    const history = await state.history('app', 0, 10);
    expect(history.items.map((h) => h.outcome).sort()).toEqual(['superseded', 'superseded']);
    await queues.close();
  });

  it('SIGTERM lets the running deploy finish, then exits 0', async () => {
    const { config, queues, enqueuer } = setup();
    const p = await startWorker(config, 1500);
    const r = await enqueuer.deploy(deploy('app', 301));
    if (r.result !== 'queued') throw new Error(r.result);
    await waitForJobs(queues, [r.jobId], ['active']);
    const signalled = Date.now();
    p.kill('SIGTERM');
    const exit = await p.exited;
    expect(exit.code).toBe(0);
    expect(await (await queues.deploy.getJob(r.jobId))?.getState()).toBe('completed');
    const [iv] = await intervals(config);
    expect(iv?.end).toBeGreaterThan(signalled);
    await queues.close();
  });

  it('a job still running at the shutdown deadline is not lost: another worker finishes it', async () => {
    const { config, queues, enqueuer } = setup({
      worker: { concurrency: 1, lockTtl: 1500 },
      server: { shutdownTimeout: 300, port: 0, host: '127.0.0.1', bodyLimit: 1024 },
    });
    const p = await startWorker(config, 2500);
    const r = await enqueuer.deploy(deploy('app', 401));
    if (r.result !== 'queued') throw new Error(r.result);
    await waitForJobs(queues, [r.jobId], ['active']);
    p.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
    expect(await (await queues.deploy.getJob(r.jobId))?.getState()).not.toBe('completed');
    await startWorker(config, 200);
    await waitForJobs(queues, [r.jobId], ['completed'], 30_000);
    expect((await queues.deploy.getJob(r.jobId))?.returnvalue).toMatchObject({
      outcome: 'success',
    });
    await queues.close();
  });
});

describe('npm start', () => {
  it('stops with every config problem, naming the key and the file, exit code 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rh-bad-'));
    const file = join(dir, 'rollhook.yaml');
    writeFileSync(
      file,
      'redis: { url: "nope" }\ngitlab: { url: "x", token: "${TOKEN_NOT_SET_X}" }\ntargets: []\n',
    );
    const p = spawnNode('src/main.ts', ['--config', file], {});
    const exit = await p.exited;
    expect(exit.code).toBe(2);
    expect(p.output()).toContain(`invalid config ${file}`);
    expect(p.output()).toContain('redis.url: a redis:// or rediss:// URL');
    expect(p.output()).toContain('gitlab.token: environment variable TOKEN_NOT_SET_X is not set');
    expect(p.output()).toContain('targets: configure at least one target');
  });

  it('a webhook posted to a started rollhook becomes one job with the right id; a second identical post does not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rh-start-'));
    const file = join(dir, 'rollhook.yaml');
    const prefix = `start${Date.now()}`;
    writeFileSync(
      file,
      `server: { port: 0, host: 127.0.0.1 }
redis: { url: "${redisUrl}", prefix: ${prefix} }
gitlab: { url: "http://127.0.0.1:9", token: "\${TEST_GITLAB_TOKEN}" }
targets:
  - name: app
    gitlab: { project: group/app, webhookSecret: "\${TEST_HOOK_SECRET}", refs: [main] }
    kubernetes: { namespace: prod, deployment: app, containers: { app: "127.0.0.1:5000/group/app" } }
`,
    );
    const p = spawnNode('src/main.ts', ['--config', file, '--role', 'api'], {
      TEST_GITLAB_TOKEN: 'glpat-abcdef123456',
      TEST_HOOK_SECRET: 'super-secret-hook-token',
    });
    running.push(p);
    await waitForOutput(p, /"message":"listening"/);
    const port = Number(/"port":(\d+)/.exec(p.output())?.[1]);
    const { pipelineHook } = await import('../support/payloads.ts');
    const body = JSON.stringify(pipelineHook({ id: 77, sha: randomSha() }));
    const send = () =>
      fetch(`http://127.0.0.1:${port}/webhooks/gitlab`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'X-Gitlab-Event': 'Pipeline Hook',
          'X-Gitlab-Token': 'super-secret-hook-token',
        },
        body,
      });
    expect((await send()).status).toBe(202);
    expect((await send()).status).toBe(200);
    const queues = openQueues({ url: redisUrl, maxRetriesPerRequest: null }, prefix);
    const jobs = await queues.deploy.getJobs(['waiting', 'active', 'completed', 'delayed']);
    expect(jobs.map((j) => j.id)).toEqual(['deploy-app-77']);
    await queues.close();
    p.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
    // No secret reached a log line.
    expect(p.output()).not.toContain('super-secret-hook-token');
    expect(p.output()).not.toContain('glpat-abcdef123456');
  });
});
