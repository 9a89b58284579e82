/**
 * The REST API against a whole rollhook (role all, real Redis, real registry, the GitLab
 * contract server), every route, every auth outcome and every validation error.
 */
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../src/http/app.ts';
import { operatorRouters } from '../../src/http/api/surfaces.ts';
import { createGitLabClient } from '../../src/gitlab/client.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { Enqueuer } from '../../src/queue/enqueue.ts';
import { openQueues } from '../../src/queue/queues.ts';
import { ImageRegistry } from '../../src/registry/index.ts';
import { TargetState } from '../../src/targets/state.ts';
import {
  deployAccepted,
  deploymentPage,
  jobView,
  problem,
  rollbackAccepted,
  targetList,
} from '../../src/http/api/schemas.ts';
import { freePort } from '../support/processes.ts';
import { registryFetch } from '../support/registry.ts';
import { startOperatorStack, type OperatorStack } from '../support/operator-stack.ts';

let stack: OperatorStack;

beforeAll(async () => {
  stack = await startOperatorStack({
    redisUrl: inject('redisUrl'),
    registry: inject('registry'),
    stepMs: 20,
  });
});
afterAll(async () => {
  await stack?.stop();
});

const api = () => request(stack.url);
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** A problem document with this status; returns it, parsed. */
function expectProblem(res: request.Response, status: number, detail?: RegExp) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const p = problem.parse(JSON.parse(res.text));
  expect(p.status).toBe(status);
  if (detail) expect(p.detail).toMatch(detail);
  return p;
}

async function waitForJob(
  id: string,
  states: string[] = ['completed', 'failed'],
  also: (job: ReturnType<typeof jobView.parse>) => boolean = () => true,
) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await api().get(`/api/v1/jobs/${id}`).set(bearer(stack.tokens.ops));
    expect(res.status).toBe(200);
    const job = jobView.parse(res.body);
    if (states.includes(job.state) && also(job)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.state}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Deploys a fresh successful pipeline of main through the API and waits for its end. */
async function deployed(sha?: string) {
  const p = stack.pipeline(sha ? { sha } : {});
  const res = await api()
    .post('/api/v1/targets/app/deployments')
    .set(bearer(stack.tokens.ops))
    .send({ sha: p.sha });
  expect(res.status, res.text).toBe(202);
  const job = await waitForJob(deployAccepted.parse(res.body).jobId);
  return { ...p, job };
}

describe('auth', () => {
  it('401 without a token, with another scheme, with an unknown token; the problem says which', async () => {
    let res = await api().get('/api/v1/targets');
    expectProblem(res, 401, /Authorization header is missing/);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="rollhook"');
    res = await api().get('/api/v1/targets').set('Authorization', 'Basic b3BzOm9wcw==');
    expectProblem(res, 401, /must be "Bearer <token>"/);
    res = await api().get('/api/v1/targets').set(bearer('not-a-configured-token'));
    expectProblem(res, 401, /matches no token/);
    // every route is behind the token
    for (const [method, path] of [
      ['get', '/api/v1/targets/app/deployments'],
      ['post', '/api/v1/targets/app/deployments'],
      ['post', '/api/v1/targets/app/rollback'],
      ['get', '/api/v1/jobs/deploy-app-1'],
    ] as const) {
      expectProblem(await api()[method](path), 401);
    }
  });

  it('403 outside the token scope: action missing, target not covered', async () => {
    expectProblem(
      await api().get('/api/v1/targets').set(bearer(stack.tokens.rollbacker)),
      403,
      /may not read/,
    );
    expectProblem(
      await api().get('/api/v1/targets/app/deployments').set(bearer(stack.tokens.rollbacker)),
      403,
      /may not read/,
    );
    expectProblem(
      await api()
        .post('/api/v1/targets/app/deployments')
        .set(bearer(stack.tokens.reader))
        .send({ ref: 'main' }),
      403,
      /may not deploy/,
    );
    expectProblem(
      await api()
        .post('/api/v1/targets/other/deployments')
        .set(bearer(stack.tokens.appDeployer))
        .send({ ref: 'main' }),
      403,
      /may not act on target other/,
    );
    expectProblem(
      await api()
        .post('/api/v1/targets/app/rollback')
        .set(bearer(stack.tokens.appDeployer))
        .send({}),
      403,
      /may not rollback/,
    );
    expectProblem(
      await api().get('/api/v1/targets/other/deployments').set(bearer(stack.tokens.appDeployer)),
      403,
      /target other/,
    );
  });

  it('a token sees only the targets it may read', async () => {
    const scoped = targetList.parse(
      (await api().get('/api/v1/targets').set(bearer(stack.tokens.appDeployer))).body,
    );
    expect(scoped.items.map((t) => t.name)).toEqual(['app']);
    const all = targetList.parse(
      (await api().get('/api/v1/targets').set(bearer(stack.tokens.reader))).body,
    );
    expect(all.items.map((t) => t.name)).toEqual(['app', 'other']);
  });

  it('a job of a target outside the scope is 403', async () => {
    const job = await stack.queues.deploy.add(
      'deploy',
      {
        target: 'other',
        sha: 'f'.repeat(40),
        ref: 'main',
        pipelineId: 1,
        trigger: { kind: 'api' },
      } as never,
      { jobId: `scope-probe-${Date.now()}`, delay: 3_600_000 },
    );
    expectProblem(
      await api().get(`/api/v1/jobs/${job.id}`).set(bearer(stack.tokens.appDeployer)),
      403,
      /target other/,
    );
    expect(
      (await api().get(`/api/v1/jobs/${job.id}`).set(bearer(stack.tokens.reader))).status,
    ).toBe(200);
    await job.remove();
  });

  it('the OpenAPI document needs no token', async () => {
    const res = await api().get('/api/v1/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
  });
});

describe('GET /api/v1/targets', () => {
  it('each target with what runs (sha, digest, images, since, by) and the last outcome', async () => {
    const before = targetList.parse(
      (await api().get('/api/v1/targets').set(bearer(stack.tokens.reader))).body,
    );
    expect(before.items.find((t) => t.name === 'other')).toMatchObject({
      current: null,
      lastDeploy: null,
      lastSuccessAt: null,
      environment: { name: 'production', tier: 'production' },
    });

    const d = await deployed();
    expect(d.job.state).toBe('completed');
    const after = targetList.parse(
      (await api().get('/api/v1/targets').set(bearer(stack.tokens.reader))).body,
    );
    const app = after.items.find((t) => t.name === 'app');
    expect(app?.current).toMatchObject({
      sha: d.sha,
      ref: 'main',
      pipelineId: d.id,
      by: 'ops',
      jobId: d.job.id,
      images: { app: `${stack.appRepo}:prod-${d.sha}` },
    });
    expect(app?.lastDeploy).toMatchObject({
      jobId: d.job.id,
      kind: 'deploy',
      outcome: 'success',
      sha: d.sha,
    });
    expect(app?.lastDeploy?.steps.map((s) => s.name)).toEqual([
      'guard',
      'resolve',
      'patch',
      'watch',
      'promote',
    ]);
    expect(app?.lastSuccessAt).toBe(app?.current?.since);

    // a failed deploy: the current release stays, the last outcome says failed
    const failed = await deployed(`dead${'0'.repeat(30)}${Date.now().toString(16).slice(-6)}`);
    const again = targetList
      .parse((await api().get('/api/v1/targets').set(bearer(stack.tokens.reader))).body)
      .items.find((t) => t.name === 'app');
    expect(again?.current?.sha).toBe(d.sha);
    expect(again?.lastDeploy).toMatchObject({
      outcome: 'failed',
      sha: failed.sha,
      reason: expect.stringMatching(/ProgressDeadlineExceeded/),
    });
  });
});

describe('GET /api/v1/targets/{name}/deployments', () => {
  it('history newest first, paged with offset and limit', async () => {
    await deployed();
    await deployed();
    const all = deploymentPage.parse(
      (
        await api()
          .get('/api/v1/targets/app/deployments?limit=100')
          .set(bearer(stack.tokens.reader))
      ).body,
    );
    expect(all.total).toBeGreaterThanOrEqual(4);
    expect(all.items).toHaveLength(all.total);
    const finished = all.items.map((i) => i.finishedAt);
    expect(finished).toEqual([...finished].sort().reverse());
    const page = deploymentPage.parse(
      (
        await api()
          .get('/api/v1/targets/app/deployments?offset=1&limit=2')
          .set(bearer(stack.tokens.reader))
      ).body,
    );
    expect(page).toMatchObject({ offset: 1, limit: 2, total: all.total });
    expect(page.items.map((i) => i.jobId)).toEqual(all.items.slice(1, 3).map((i) => i.jobId));
    const dflt = deploymentPage.parse(
      (await api().get('/api/v1/targets/app/deployments').set(bearer(stack.tokens.reader))).body,
    );
    expect(dflt).toMatchObject({ offset: 0, limit: 20 });
  });

  it('an empty history for a target never deployed', async () => {
    const page = deploymentPage.parse(
      (await api().get('/api/v1/targets/other/deployments').set(bearer(stack.tokens.reader))).body,
    );
    expect(page).toEqual({ items: [], total: 0, offset: 0, limit: 20 });
  });

  it('400 for each invalid query parameter, naming it', async () => {
    for (const [q, field] of [
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=abc', 'limit'],
      ['offset=-1', 'offset'],
      ['offset=1.5', 'offset'],
      ['limit=1&limit=2', 'limit'],
    ] as const) {
      const p = expectProblem(
        await api().get(`/api/v1/targets/app/deployments?${q}`).set(bearer(stack.tokens.reader)),
        400,
        new RegExp(`${field}:`),
      );
      expect(p.errors?.map((e) => e.field)).toEqual([field]);
    }
  });

  it('404 for a target that is not configured', async () => {
    expectProblem(
      await api().get('/api/v1/targets/nope/deployments').set(bearer(stack.tokens.reader)),
      404,
      /no target named nope/,
    );
  });
});

describe('POST /api/v1/targets/{name}/deployments', () => {
  it('{sha}: 202 with the job id and Location; the job carries pipeline, sha and who asked', async () => {
    const p = stack.pipeline();
    const res = await api()
      .post('/api/v1/targets/app/deployments')
      .set(bearer(stack.tokens.appDeployer))
      .send({ sha: p.sha });
    expect(res.status, res.text).toBe(202);
    const body = deployAccepted.parse(res.body);
    expect(body).toEqual({
      jobId: `deploy-app-${p.id}`,
      target: 'app',
      sha: p.sha,
      ref: 'main',
      pipelineId: p.id,
      force: false,
      status: 'queued',
    });
    expect(res.headers.location).toBe(`/api/v1/jobs/${body.jobId}`);
    const job = await waitForJob(body.jobId);
    expect(job).toMatchObject({
      kind: 'deploy',
      target: 'app',
      sha: p.sha,
      pipelineId: p.id,
      by: 'app-deployer',
      state: 'completed',
      result: { outcome: 'success' },
    });
    const raw = await stack.queues.deploy.getJob(body.jobId);
    expect(raw?.data).toMatchObject({
      trigger: { kind: 'api', user: 'app-deployer', pipelineSource: 'push' },
      force: false,
    });
  });

  it('{ref}: the newest successful pipeline of the ref, not a newer failed one', async () => {
    const good = stack.pipeline({ ref: 'release/1' });
    stack.pipeline({ ref: 'release/1', status: 'failed' });
    const res = await api()
      .post('/api/v1/targets/app/deployments')
      .set(bearer(stack.tokens.ops))
      .send({ ref: 'release/1' });
    expect(res.status, res.text).toBe(202);
    expect(deployAccepted.parse(res.body)).toMatchObject({
      sha: good.sha,
      ref: 'release/1',
      pipelineId: good.id,
    });
    await waitForJob(deployAccepted.parse(res.body).jobId);
  });

  it('the CLI is told apart from other API clients by its User-Agent', async () => {
    const p = stack.pipeline();
    const res = await api()
      .post('/api/v1/targets/app/deployments')
      .set(bearer(stack.tokens.ops))
      .set('User-Agent', 'rollhook-cli/0.1.0')
      .send({ sha: p.sha });
    expect(res.status).toBe(202);
    const raw = await stack.queues.deploy.getJob(deployAccepted.parse(res.body).jobId);
    expect(raw?.data).toMatchObject({ trigger: { kind: 'cli', user: 'ops' } });
    await waitForJob(deployAccepted.parse(res.body).jobId);
  });

  it('409 for the sha that runs, unless forced; force gives a new job', async () => {
    const d = await deployed();
    const res = await api()
      .post('/api/v1/targets/app/deployments')
      .set(bearer(stack.tokens.ops))
      .send({ sha: d.sha });
    const p = expectProblem(res, 409, new RegExp(`already runs ${d.sha}.*"force": true`));
    expect(p.jobId).toBe(d.job.id);
    const forced = await api()
      .post('/api/v1/targets/app/deployments')
      .set(bearer(stack.tokens.ops))
      .send({ sha: d.sha, force: true });
    expect(forced.status, forced.text).toBe(202);
    const body = deployAccepted.parse(forced.body);
    expect(body.force).toBe(true);
    expect(body.jobId).toMatch(new RegExp(`^deploy-app-${d.id}-force-`));
    expect((await waitForJob(body.jobId)).result?.outcome).toBe('success');
  });

  it('409 for a pipeline older than one accepted, unless forced', async () => {
    const older = stack.pipeline();
    await deployed();
    const p = expectProblem(
      await api()
        .post('/api/v1/targets/app/deployments')
        .set(bearer(stack.tokens.ops))
        .send({ sha: older.sha }),
      409,
      /older than pipeline/,
    );
    expect(p.jobId).toBeUndefined();
    const forced = await api()
      .post('/api/v1/targets/app/deployments')
      .set(bearer(stack.tokens.ops))
      .send({ sha: older.sha, force: true });
    expect(forced.status).toBe(202);
    await waitForJob(deployAccepted.parse(forced.body).jobId);
  });

  it('409 for the same pipeline twice, naming the job that has it', async () => {
    const p = stack.pipeline();
    const first = await api()
      .post('/api/v1/targets/app/deployments')
      .set(bearer(stack.tokens.ops))
      .send({ sha: p.sha });
    expect(first.status).toBe(202);
    const second = expectProblem(
      await api()
        .post('/api/v1/targets/app/deployments')
        .set(bearer(stack.tokens.ops))
        .send({ ref: 'main' }),
      409,
      new RegExp(`pipeline ${p.id}`),
    );
    expect(second.jobId).toBe(`deploy-app-${p.id}`);
    await waitForJob(`deploy-app-${p.id}`);
  });

  it('422 when GitLab knows no successful pipeline, or the ref does not deploy to the target', async () => {
    const unknown = 'a'.repeat(40);
    expectProblem(
      await api()
        .post('/api/v1/targets/app/deployments')
        .set(bearer(stack.tokens.ops))
        .send({ sha: unknown }),
      422,
      /no successful pipeline for sha a{40} in project group\/app/,
    );
    const failedOnly = stack.pipeline({ status: 'failed' });
    expectProblem(
      await api()
        .post('/api/v1/targets/app/deployments')
        .set(bearer(stack.tokens.ops))
        .send({ sha: failedOnly.sha }),
      422,
      /no successful pipeline/,
    );
    expectProblem(
      await api()
        .post('/api/v1/targets/app/deployments')
        .set(bearer(stack.tokens.ops))
        .send({ ref: 'feature/x' }),
      422,
      /ref feature\/x, which does not deploy to app \(its refs: main, release\/\*\)/,
    );
    expectProblem(
      await api()
        .post('/api/v1/targets/app/deployments')
        .set(bearer(stack.tokens.ops))
        .send({ ref: 'release/9' }),
      422,
      /no successful pipeline for ref release\/9/,
    );
    const onFeature = stack.pipeline({ ref: 'feature/x' });
    expectProblem(
      await api()
        .post('/api/v1/targets/app/deployments')
        .set(bearer(stack.tokens.ops))
        .send({ sha: onFeature.sha }),
      422,
      /pipeline \d+ ran on ref feature\/x/,
    );
  });

  it('400 for every invalid body, naming the field; 415 and 413 for the wrong kind of body', async () => {
    const post = () => api().post('/api/v1/targets/app/deployments').set(bearer(stack.tokens.ops));
    const sha = 'b'.repeat(40);
    const cases: [unknown, RegExp][] = [
      [{}, /exactly one of sha and ref/],
      [{ sha, ref: 'main' }, /exactly one of sha and ref/],
      [{ sha: 'abc1234' }, /sha: a full commit sha/],
      [{ sha: 'B'.repeat(40) }, /sha: a full commit sha/],
      [{ ref: '' }, /ref:/],
      [{ ref: 'main branch' }, /ref: a branch or tag name/],
      [{ ref: 'main', force: 'yes' }, /force:/],
      [{ ref: 'main', extra: 1 }, /extra/],
      [[{ ref: 'main' }], /expected object/],
    ];
    for (const [body, detail] of cases)
      expectProblem(await post().send(body as object), 400, detail);
    expectProblem(await post(), 400, /a JSON body is required/);
    expectProblem(
      await post().set('Content-Type', 'application/json').send('{"ref": '),
      400,
      /not a JSON object/,
    );
    expectProblem(
      await post().set('Content-Type', 'application/json').send('"main"'),
      400,
      /not a JSON object/,
    );
    expectProblem(
      await post().set('Content-Type', 'text/plain').send('ref=main'),
      415,
      /application\/json/,
    );
    expectProblem(
      await post()
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ ref: 'main', pad: 'x'.repeat(70_000) })),
      413,
      /65536 byte limit/,
    );
  });

  it('404 for an unknown target, 405 for another method', async () => {
    expectProblem(
      await api()
        .post('/api/v1/targets/nope/deployments')
        .set(bearer(stack.tokens.ops))
        .send({ ref: 'main' }),
      404,
    );
    const res = await api().delete('/api/v1/targets/app/deployments').set(bearer(stack.tokens.ops));
    expectProblem(res, 405);
    expect(res.headers.allow).toBe('GET, POST');
  });
});

describe('POST /api/v1/targets/{name}/rollback', () => {
  it('default: the previous release; 202 with job and Location; the rollback runs and the previous release runs again', async () => {
    const a = await deployed();
    await stack.pushRelease(a.sha);
    const b = await deployed();
    await stack.pushRelease(b.sha);
    const res = await api()
      .post('/api/v1/targets/app/rollback')
      .set(bearer(stack.tokens.rollbacker));
    expect(res.status, res.text).toBe(202);
    const body = rollbackAccepted.parse(res.body);
    expect(body).toMatchObject({ target: 'app', toSha: a.sha, toRef: 'main', status: 'queued' });
    expect(res.headers.location).toBe(`/api/v1/jobs/${body.jobId}`);
    const job = await waitForJob(body.jobId);
    expect(job).toMatchObject({
      kind: 'rollback',
      sha: a.sha,
      by: 'rollbacker',
      state: 'completed',
      result: { outcome: 'success' },
    });
    expect((await stack.state.current('app'))?.sha).toBe(a.sha);
    // and back again, named by a prefix of the sha
    const fwd = await api()
      .post('/api/v1/targets/app/rollback')
      .set(bearer(stack.tokens.ops))
      .send({ to: b.sha.slice(0, 10) });
    expect(fwd.status, fwd.text).toBe(202);
    expect(rollbackAccepted.parse(fwd.body).toSha).toBe(b.sha);
    await waitForJob(rollbackAccepted.parse(fwd.body).jobId);
  });

  it('409 when the release image no longer exists in the registry, saying so', async () => {
    const a = await deployed();
    const digest = await stack.pushRelease(a.sha);
    await deployed();
    const repo = stack.appRepo.split('/').slice(1).join('/');
    const del = await registryFetch(
      stack.registry.url,
      stack.registry.creds,
      `/v2/${repo}/manifests/${digest}`,
      { method: 'DELETE' },
    );
    expect(del.status).toBe(202);
    expectProblem(
      await api()
        .post('/api/v1/targets/app/rollback')
        .set(bearer(stack.tokens.ops))
        .send({ to: a.sha }),
      409,
      new RegExp(
        `image ${stack.appRepo.replace(/[.]/g, '\\.')}:prod-${a.sha} no longer exists in the registry`,
      ),
    );
  });

  it('409 for the release that runs and when there is nothing to roll back to; 422 for an unknown release', async () => {
    const current = await stack.state.current('app');
    expectProblem(
      await api()
        .post('/api/v1/targets/app/rollback')
        .set(bearer(stack.tokens.ops))
        .send({ to: current?.sha }),
      409,
      /already runs/,
    );
    expectProblem(
      await api().post('/api/v1/targets/other/rollback').set(bearer(stack.tokens.ops)).send({}),
      409,
      /no release deployed by rollhook; nothing to roll back to/,
    );
    expectProblem(
      await api()
        .post('/api/v1/targets/app/rollback')
        .set(bearer(stack.tokens.ops))
        .send({ to: '0000000' }),
      422,
      /no release of app .* has sha 0000000/,
    );
  });

  it('400 for an invalid body, 415 for a non-JSON one, 404 and 405', async () => {
    const post = () => api().post('/api/v1/targets/app/rollback').set(bearer(stack.tokens.ops));
    expectProblem(await post().send({ to: 'xyz' }), 400, /to: a commit sha or a prefix/);
    expectProblem(await post().send({ to: 'abc' }), 400, /to:/);
    expectProblem(await post().send({ sha: 'abcdef1' }), 400, /sha/);
    expectProblem(await post().send({ to: 1234567 }), 400, /to:/);
    expectProblem(await post().set('Content-Type', 'text/plain').send('to=abc'), 415);
    expectProblem(
      await api().post('/api/v1/targets/nope/rollback').set(bearer(stack.tokens.ops)).send({}),
      404,
    );
    const res = await api().get('/api/v1/targets/app/rollback').set(bearer(stack.tokens.ops));
    expectProblem(res, 405);
    expect(res.headers.allow).toBe('POST');
  });
});

describe('GET /api/v1/jobs/{id}', () => {
  it('state, current step, progress and step durations while a job runs', async () => {
    stack.hold();
    try {
      const p = stack.pipeline();
      const res = await api()
        .post('/api/v1/targets/app/deployments')
        .set(bearer(stack.tokens.ops))
        .send({ sha: p.sha });
      const id = deployAccepted.parse(res.body).jobId;
      // held at 2 of 3 replicas in its watch step until released
      const seen = await waitForJob(id, ['active'], (j) => j.progress?.updated === 2);
      expect(seen).toMatchObject({ state: 'active', step: 'watch', finishedAt: null, error: null });
      expect(seen.progress).toMatchObject({
        step: 'watch',
        desired: 3,
        updated: 2,
        message: '2 of 3 updated replicas are available',
      });
      expect(seen.steps.map((s) => s.name)).toEqual(['guard', 'resolve', 'patch']);
      expect(seen.startedAt).not.toBeNull();
      stack.release();
      const done = await waitForJob(id);
      expect(done.steps.map((s) => s.name)).toEqual([
        'guard',
        'resolve',
        'patch',
        'watch',
        'promote',
      ]);
      expect(done.steps.find((s) => s.name === 'watch')?.ms).toBeGreaterThan(0);
      expect(done).toMatchObject({
        state: 'completed',
        error: null,
        result: { outcome: 'success' },
      });
      expect(done.finishedAt).not.toBeNull();
    } finally {
      stack.release();
    }
  });

  it('a failed job shows its error; a cleanup job is found in its own queue', async () => {
    const cleanup = await stack.queues.cleanupCi.add(
      'cleanup-ci',
      {
        target: 'app',
        pipelineId: 5,
        sha: 'c'.repeat(40),
        ref: 'main',
        status: 'success',
        correlationId: 'x',
      },
      { jobId: `cleanup-ci-app-probe-${Date.now()}`, delay: 3_600_000 },
    );
    const view = jobView.parse(
      (await api().get(`/api/v1/jobs/${cleanup.id}`).set(bearer(stack.tokens.reader))).body,
    );
    expect(view).toMatchObject({
      queue: 'cleanup-ci',
      kind: 'cleanup-ci',
      target: 'app',
      state: 'delayed',
      sha: 'c'.repeat(40),
      pipelineId: 5,
      by: null,
    });
    await cleanup.remove();

    // a job for a target whose data cannot parse fails in the processor with its reason
    const broken = await stack.queues.deploy.add(
      'deploy',
      { target: 'app', sha: 'not-a-sha' } as never,
      { jobId: `broken-${Date.now()}`, attempts: 1 },
    );
    const failed = await waitForJob(broken.id ?? '', ['failed']);
    expect(failed.error).toMatch(/sha|invalid/i);
    expect(failed.attempts).toBe(1);
    expect(failed.result).toBeNull();
  });

  it('404 for an unknown job, 400 for an id that cannot be one, 405 for another method', async () => {
    expectProblem(
      await api().get('/api/v1/jobs/deploy-app-999999999').set(bearer(stack.tokens.reader)),
      404,
      /no job deploy-app-999999999/,
    );
    const p = expectProblem(
      await api().get('/api/v1/jobs/a:b').set(bearer(stack.tokens.reader)),
      400,
      /id:/,
    );
    expect(p.errors?.[0]?.field).toBe('id');
    expectProblem(
      await api().delete('/api/v1/jobs/deploy-app-1').set(bearer(stack.tokens.ops)),
      405,
    );
  });
});

describe('other', () => {
  it('an unknown API path is a 404 problem; other methods on /targets are 405', async () => {
    expectProblem(
      await api().get('/api/v1/nothing').set(bearer(stack.tokens.reader)),
      404,
      /no API route GET \/api\/v1\/nothing/,
    );
    const res = await api().post('/api/v1/targets').set(bearer(stack.tokens.ops)).send({});
    expectProblem(res, 405);
    expect(res.headers.allow).toBe('GET');
  });

  it('GitLab or the registry unreachable: 503 with Retry-After, never a 500', async () => {
    const redisUrl = inject('redisUrl');
    const dead = `http://127.0.0.1:${await freePort()}`;
    const config = {
      ...stack.config,
      gitlab: { url: dead, token: 'glpat-x' },
      registries: [{ host: '127.0.0.1:1', url: dead, protectedTags: ['prod'] }],
    };
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
    const queues = openQueues(
      { url: redisUrl, maxRetriesPerRequest: null },
      `${config.redis.prefix}x`,
    );
    const state = new TargetState(redis, config.redis.prefix);
    const app = createApp({
      config,
      redis,
      enqueuer: new Enqueuer(queues, state),
      routers: operatorRouters({
        config,
        state,
        queues,
        enqueuer: new Enqueuer(queues, state),
        metrics: createMetrics({ defaultMetrics: false }),
        gitlab: createGitLabClient(config.gitlab, { retry: { attempts: 1 } }),
        images: new ImageRegistry(config.registries, { attempts: 1 }),
      }),
    });
    try {
      const g = await request(app)
        .post('/api/v1/targets/app/deployments')
        .set(bearer(stack.tokens.ops))
        .send({ ref: 'main' });
      expectProblem(g, 503, /GitLab unavailable.*try again later/);
      expect(g.headers['retry-after']).toBe('30');
      // app's releases (from the tests above) are in the shared state: the image check is what fails
      const current = await stack.state.current('app');
      const sha = (await stack.state.releases('app')).find((r) => r.sha !== current?.sha)?.sha;
      expect(sha).toBeDefined();
      const reg = {
        ...config,
        targets: config.targets.map((t) =>
          t.name === 'app'
            ? {
                ...t,
                kubernetes: { ...t.kubernetes, containers: { app: '127.0.0.1:1/group/app' } },
              }
            : t,
        ),
      };
      const app2 = createApp({
        config: reg,
        redis,
        enqueuer: new Enqueuer(queues, state),
        routers: operatorRouters({
          config: reg,
          state,
          queues,
          enqueuer: new Enqueuer(queues, state),
          metrics: createMetrics({ defaultMetrics: false }),
          images: new ImageRegistry(reg.registries, { attempts: 1 }),
        }),
      });
      const r = await request(app2)
        .post('/api/v1/targets/app/rollback')
        .set(bearer(stack.tokens.ops))
        .send({ to: sha });
      expectProblem(r, 503, /registry/i);
    } finally {
      await queues.close();
      await redis.quit();
    }
  });
});
