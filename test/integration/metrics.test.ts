/**
 * /metrics parsed with a Prometheus text-format parser: the families are there with their
 * types, counters and histograms move with deploys, webhooks and registry calls, gauges read
 * the queue and target state; a worker-only process serves its own /metrics.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import request from 'supertest';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../src/http/app.ts';
import { operatorRouters } from '../../src/http/api/surfaces.ts';
import { deployAccepted, jobView } from '../../src/http/api/schemas.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { Enqueuer } from '../../src/queue/enqueue.ts';
import { openQueues } from '../../src/queue/queues.ts';
import { TargetState } from '../../src/targets/state.ts';
import { testConfig } from '../support/config.ts';
import { pipelineHook } from '../support/payloads.ts';
import { freePort } from '../support/processes.ts';
import { spawnNode, waitForOutput } from '../support/spawn-rollhook.ts';
import { startOperatorStack, type OperatorStack } from '../support/operator-stack.ts';

/*
 * The parser is Prometheus' own: prometheus_client's text_string_to_metric_families (PyPI,
 * pinned), in a venv outside the repo made on first use. Its JSON answer is checked here.
 */
const PROMETHEUS_CLIENT = '0.26.0';
const PARSE = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "help": f.documentation,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value if math.isfinite(s.value) else str(s.value)} for s in f.samples]})
json.dump(out, sys.stdout)
`;
const familySchema = z.object({
  name: z.string(),
  type: z.enum([
    'counter',
    'gauge',
    'histogram',
    'summary',
    'info',
    'stateset',
    'gaugehistogram',
    'unknown',
  ]),
  help: z.string(),
  // NaN and ±Inf come as strings ('nan', 'inf'): JSON has no such numbers (prom-client's
  // event-loop lag mean is NaN before its first sample)
  samples: z.array(
    z.object({
      name: z.string(),
      labels: z.record(z.string(), z.string()),
      value: z.union([z.number(), z.string().transform(Number)]),
    }),
  ),
});
type Family = z.infer<typeof familySchema>;

function parserPython(): string {
  const venv = join(
    process.env.ROLLHOOK_CACHE ?? join(homedir(), '.cache', 'rollhook'),
    `prometheus-client-${PROMETHEUS_CLIENT}`,
  );
  const python = join(venv, 'bin', 'python');
  if (existsSync(join(venv, '.complete'))) return python;
  // built aside and renamed into place, so a half-made venv is never used
  const tmp = `${venv}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  execFileSync('python3', ['-m', 'venv', tmp], { stdio: 'inherit' });
  execFileSync(
    join(tmp, 'bin', 'python'),
    [
      '-m',
      'pip',
      'install',
      '--quiet',
      '--disable-pip-version-check',
      `prometheus-client==${PROMETHEUS_CLIENT}`,
    ],
    { stdio: 'inherit' },
  );
  writeFileSync(join(tmp, '.complete'), '');
  try {
    renameSync(tmp, venv);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another run made it first
  }
  return python;
}

let python = '';

function parseText(text: string): Family[] {
  const out = execFileSync(python, ['-c', PARSE], { input: text, encoding: 'utf8' });
  return z.array(familySchema).parse(JSON.parse(out));
}

class Scrape {
  readonly families: Map<string, Family>;
  constructor(text: string) {
    this.families = new Map(parseText(text).map((f) => [f.name, f]));
  }
  /** by family name as Prometheus names it (a counter without its _total) */
  family(name: string): Family {
    const f = this.families.get(name);
    if (!f)
      throw new Error(
        `no metric family ${name}; have ${[...this.families.keys()].filter((n) => n.startsWith('rollhook')).join(', ')}`,
      );
    return f;
  }
  private sample(sampleName: string, labels: Record<string, string>) {
    const familyName =
      [...this.families.keys()].find((f) => sampleName === f || sampleName.startsWith(`${f}_`)) ??
      sampleName;
    return this.family(familyName).samples.find(
      (m) => m.name === sampleName && Object.entries(labels).every(([k, v]) => m.labels[k] === v),
    );
  }
  /** a counter or gauge sample by its sample name; 0 when absent */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.sample(name, labels)?.value ?? 0;
  }
  has(name: string, labels: Record<string, string>): boolean {
    return this.sample(name, labels) !== undefined;
  }
  /** a histogram's observation count; 0 when absent */
  count(name: string, labels: Record<string, string> = {}): number {
    return this.sample(`${name}_count`, labels)?.value ?? 0;
  }
}

let stack: OperatorStack;
const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

async function scrape(
  url = stack.url,
  token: string | undefined = stack.metricsToken,
): Promise<Scrape> {
  const req = request(url).get('/metrics');
  const res = await (token ? req.set(bearer(token)) : req);
  expect(res.status, res.text).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return new Scrape(res.text);
}

async function deployAndWait(sha?: string): Promise<{ sha: string; jobId: string }> {
  const p = stack.pipeline(sha ? { sha } : {});
  const res = await request(stack.url)
    .post('/api/v1/targets/app/deployments')
    .set(bearer(stack.tokens.ops))
    .send({ sha: p.sha });
  expect(res.status, res.text).toBe(202);
  const jobId = deployAccepted.parse(res.body).jobId;
  for (;;) {
    const job = jobView.parse(
      (await request(stack.url).get(`/api/v1/jobs/${jobId}`).set(bearer(stack.tokens.ops))).body,
    );
    if (job.state === 'completed' || job.state === 'failed') return { sha: p.sha, jobId };
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  python = parserPython();
  stack = await startOperatorStack({
    redisUrl: inject('redisUrl'),
    registry: inject('registry'),
    stepMs: 20,
  });
});
afterAll(async () => {
  await stack?.stop();
});

describe('/metrics', () => {
  it('401 without metrics.token or with another token', async () => {
    let res = await request(stack.url).get('/metrics');
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/problem\+json/);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    res = await request(stack.url).get('/metrics').set(bearer(stack.tokens.ops));
    expect(res.status).toBe(401);
  });

  it('every family with its type and help', async () => {
    const s = await scrape();
    const want: Record<string, Family['type']> = {
      rollhook_webhooks: 'counter',
      rollhook_deploys: 'counter',
      rollhook_deploy_duration_seconds: 'histogram',
      rollhook_step_duration_seconds: 'histogram',
      rollhook_registry_requests: 'counter',
      rollhook_queue_jobs: 'gauge',
      rollhook_rollouts_in_progress: 'gauge',
      rollhook_last_successful_deploy_timestamp_seconds: 'gauge',
      rollhook_state_up: 'gauge',
      process_cpu_seconds: 'counter',
    };
    for (const [name, type] of Object.entries(want)) {
      expect(s.family(name).type, name).toBe(type);
      expect(s.family(name).help.length, name).toBeGreaterThan(10);
    }
    expect(s.value('rollhook_state_up')).toBe(1);
    // every queue and state is there, zero or not
    for (const queue of ['deploy', 'cleanup-ci'])
      for (const state of ['waiting', 'active', 'delayed', 'completed', 'failed'])
        expect(s.has('rollhook_queue_jobs', { queue, state })).toBe(true);
    expect(s.value('rollhook_rollouts_in_progress', { target: 'other' })).toBe(0);
    expect(s.has('rollhook_last_successful_deploy_timestamp_seconds', { target: 'other' })).toBe(
      false,
    );
  });

  it('deploy counters, durations, step histograms and the last-success time move with deploys', async () => {
    const before = await scrape();
    const ok = await deployAndWait();
    const after = await scrape();
    expect(after.value('rollhook_deploys_total', { target: 'app', outcome: 'success' })).toBe(
      before.value('rollhook_deploys_total', { target: 'app', outcome: 'success' }) + 1,
    );
    expect(
      after.count('rollhook_deploy_duration_seconds', { target: 'app', outcome: 'success' }),
    ).toBe(
      before.count('rollhook_deploy_duration_seconds', { target: 'app', outcome: 'success' }) + 1,
    );
    for (const step of ['guard', 'resolve', 'patch', 'watch', 'promote']) {
      expect(
        after.count('rollhook_step_duration_seconds', { target: 'app', step, status: 'done' }),
        step,
      ).toBe(
        before.count('rollhook_step_duration_seconds', { target: 'app', step, status: 'done' }) + 1,
      );
    }
    const since = (await stack.state.current('app'))?.deployedAt;
    expect((await stack.state.current('app'))?.sha).toBe(ok.sha);
    expect(
      after.value('rollhook_last_successful_deploy_timestamp_seconds', { target: 'app' }),
    ).toBe(Date.parse(since ?? '') / 1000);
    expect(after.value('rollhook_queue_jobs', { queue: 'deploy', state: 'completed' })).toBe(
      before.value('rollhook_queue_jobs', { queue: 'deploy', state: 'completed' }) + 1,
    );

    const lastSuccess = after.value('rollhook_last_successful_deploy_timestamp_seconds', {
      target: 'app',
    });
    await deployAndWait(`dead${'1'.repeat(30)}${Date.now().toString(16).slice(-6)}`);
    const failed = await scrape();
    expect(failed.value('rollhook_deploys_total', { target: 'app', outcome: 'failed' })).toBe(
      after.value('rollhook_deploys_total', { target: 'app', outcome: 'failed' }) + 1,
    );
    // a failed deploy does not move the last success
    expect(
      failed.value('rollhook_last_successful_deploy_timestamp_seconds', { target: 'app' }),
    ).toBe(lastSuccess);
  });

  it('rollouts in progress and active jobs while a deploy runs', async () => {
    stack.hold(); // the rollout stays in its watch step until released
    const p = stack.pipeline();
    const res = await request(stack.url)
      .post('/api/v1/targets/app/deployments')
      .set(bearer(stack.tokens.ops))
      .send({ sha: p.sha });
    expect(res.status).toBe(202);
    let seen: Scrape | undefined;
    for (let i = 0; i < 200 && !seen; i++) {
      const s = await scrape();
      if (s.value('rollhook_rollouts_in_progress', { target: 'app' }) === 1) seen = s;
      else await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen, 'a scrape saw the rollout').toBeDefined();
    expect(seen?.value('rollhook_queue_jobs', { queue: 'deploy', state: 'active' })).toBe(1);
    expect(seen?.value('rollhook_rollouts_in_progress', { target: 'other' })).toBe(0);
    stack.release();
    for (let i = 0; i < 200; i++) {
      if ((await scrape()).value('rollhook_rollouts_in_progress', { target: 'app' }) === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the rollout never ended in the metrics');
  });

  it('webhooks by result', async () => {
    const before = await scrape();
    const hook = (token: string, body: unknown) =>
      request(stack.url)
        .post('/webhooks/gitlab')
        .set({
          'Content-Type': 'application/json',
          'X-Gitlab-Event': 'Pipeline Hook',
          'X-Gitlab-Token': token,
        })
        .send(JSON.stringify(body));
    expect((await hook('wrong-secret', pipelineHook())).status).toBe(401);
    const p = stack.pipeline();
    expect(
      (await hook('hook-secret-app', pipelineHook({ id: p.id, sha: p.sha, status: 'success' })))
        .status,
    ).toBe(202);
    expect(
      (await hook('hook-secret-app', pipelineHook({ id: p.id + 100_000, status: 'running' })))
        .status,
    ).toBe(200);
    const after = await scrape();
    for (const result of ['unauthorized', 'queued', 'ignored']) {
      expect(after.value('rollhook_webhooks_total', { result }), result).toBe(
        before.value('rollhook_webhooks_total', { result }) + 1,
      );
    }
  });

  it('registry requests by status, from the API process (rollback image check)', async () => {
    const a = await deployAndWait();
    await stack.pushRelease(a.sha);
    await deployAndWait();
    const before = await scrape();
    const head = { kind: 'registry', method: 'HEAD', status: '200' };
    const res = await request(stack.url)
      .post('/api/v1/targets/app/rollback')
      .set(bearer(stack.tokens.ops))
      .send({ to: a.sha });
    expect(res.status, res.text).toBe(202);
    const after = await scrape();
    expect(after.value('rollhook_registry_requests_total', head)).toBe(
      before.value('rollhook_registry_requests_total', head) + 1,
    );
    expect(
      after
        .family('rollhook_registry_requests')
        .samples.every((m) => m.labels.host === inject('registry').host),
    ).toBe(true);
  });
});

describe('where each metric is served', () => {
  it('a worker-only process serves its own /metrics: its deploys and steps, not the queue gauges', async () => {
    const redisUrl = inject('redisUrl');
    const config = testConfig({ redisUrl, metrics: { port: 0 } });
    const p = spawnNode('test/support/worker-process.ts', [], {
      ROLLHOOK_TEST_CONFIG: JSON.stringify(config),
      ROLE: 'worker',
      DEPLOY_MS: '50',
      LOG_SILENT: '0',
    });
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
    const queues = openQueues({ url: redisUrl, maxRetriesPerRequest: null }, config.redis.prefix);
    try {
      await waitForOutput(p, /"message":"metrics listening"[^\n]*"port":\d+/);
      const port = Number(/"message":"metrics listening"[^\n]*"port":(\d+)/.exec(p.output())?.[1]);
      const url = `http://127.0.0.1:${port}`;
      expect((await request(url).get('/healthz')).status).toBe(200);
      expect((await request(url).get('/api/v1/targets')).status).toBe(404);
      const enq = new Enqueuer(queues, new TargetState(redis, config.redis.prefix));
      const q = await enq.deploy({
        target: 'app',
        sha: 'e'.repeat(40),
        ref: 'main',
        tag: false,
        pipelineId: 7,
        trigger: { kind: 'api' },
        force: false,
        correlationId: 'metrics-worker',
        requestedAt: new Date().toISOString(),
      });
      expect(q.result).toBe('queued');
      let s: Scrape | undefined;
      for (let i = 0; i < 200; i++) {
        s = await scrape(url, undefined);
        if (s.value('rollhook_deploys_total', { target: 'app', outcome: 'success' }) === 1) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(s?.value('rollhook_deploys_total', { target: 'app', outcome: 'success' })).toBe(1);
      expect(
        s?.count('rollhook_step_duration_seconds', { target: 'app', step: 'slow', status: 'done' }),
      ).toBe(1);
      expect(s?.families.has('rollhook_queue_jobs')).toBe(false);
      expect(s?.families.has('rollhook_last_successful_deploy_timestamp_seconds')).toBe(false);
    } finally {
      p.kill('SIGTERM');
      await p.exited;
      await queues.close();
      await redis.quit();
    }
  });

  it('Redis unreachable: /metrics still answers, rollhook_state_up is 0 and the Redis gauges are empty', async () => {
    const dead = `redis://127.0.0.1:${await freePort()}`;
    const config = testConfig({ redisUrl: dead });
    const opts = {
      maxRetriesPerRequest: null,
      retryStrategy: () => 1000,
      lazyConnect: true,
    } as const;
    const redis = new Redis(dead, opts);
    redis.on('error', () => undefined);
    const queues = openQueues({ url: dead, ...opts }, config.redis.prefix);
    for (const q of [queues.deploy, queues.cleanupCi]) q.on('error', () => undefined);
    const state = new TargetState(redis, config.redis.prefix);
    const enqueuer = new Enqueuer(queues, state);
    const metrics = createMetrics({ defaultMetrics: false });
    const app = createApp({
      config,
      redis,
      enqueuer,
      routers: operatorRouters({
        config,
        state,
        queues,
        enqueuer,
        metrics,
        gitlab: {
          latestSuccessfulPipeline: async () => null,
          successfulPipelineForSha: async () => null,
        },
        images: { digestOf: async () => null },
      }),
    });
    try {
      const started = performance.now();
      const res = await request(app).get('/metrics');
      const ms = performance.now() - started;
      expect(res.status).toBe(200);
      const s = new Scrape(res.text);
      expect(s.value('rollhook_state_up')).toBe(0);
      expect(s.family('rollhook_queue_jobs').samples).toEqual([]);
      expect(s.family('rollhook_rollouts_in_progress').samples).toEqual([]);
      process.stdout.write(`scrape with Redis down answered in ${ms.toFixed(0)} ms\n`);
    } finally {
      redis.disconnect();
      await Promise.race([queues.close(), new Promise((r) => setTimeout(r, 2000))]);
    }
  });
});
