import { createHmac } from 'node:crypto';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Express } from 'express';
import { createApp } from '../../src/http/app.ts';
import { Enqueuer } from '../../src/queue/enqueue.ts';
import { openQueues, type Queues } from '../../src/queue/queues.ts';
import { deployJobSchema } from '../../src/queue/jobs.ts';
import { TargetState } from '../../src/targets/state.ts';
import type { Config } from '../../src/config/schema.ts';
import { testConfig } from '../support/config.ts';
import { pipelineHook, randomSha } from '../support/payloads.ts';

let redis: Redis;
let queues: Queues;
let app: Express;
let config: Config;
let state: TargetState;
let nextPipeline = 1000;

const SECRET = 'hook-secret-app';
const SIGNING_KEY = Buffer.from('rollhook-test-signing-key-32byte');
const SIGNING = `whsec_${SIGNING_KEY.toString('base64')}`;

function post(body: unknown, headers: Record<string, string> = {}) {
  return request(app)
    .post('/webhooks/gitlab')
    .set({
      'Content-Type': 'application/json',
      'X-Gitlab-Event': 'Pipeline Hook',
      'X-Gitlab-Token': SECRET,
      ...headers,
    })
    .send(typeof body === 'string' ? body : JSON.stringify(body));
}

beforeAll(() => {
  const redisUrl = inject('redisUrl');
  config = testConfig({
    redisUrl,
    server: { bodyLimit: 64 * 1024 },
    targets: [
      {
        name: 'app',
        gitlab: { project: 'group/app', webhookSecret: SECRET, refs: ['main', 'release/*'] },
        kubernetes: {
          namespace: 'prod',
          deployment: 'app',
          containers: { app: '127.0.0.1:5000/group/app' },
        },
        images: { ciTags: ['ci-{sha}'], ciRepository: '127.0.0.1:5000/group/app-ci' },
      },
      {
        name: 'app-eu',
        gitlab: { project: 1, webhookSecret: SECRET, refs: ['main'] },
        kubernetes: {
          namespace: 'prod-eu',
          deployment: 'app',
          containers: { app: '127.0.0.1:5000/group/app' },
        },
      },
      {
        name: 'signed',
        gitlab: {
          project: 'group/signed',
          webhookSecret: 'hook-secret-signed',
          signingSecret: SIGNING,
          refs: ['main'],
        },
        kubernetes: {
          namespace: 'signed',
          deployment: 'app',
          containers: { app: '127.0.0.1:5000/group/signed' },
        },
      },
      {
        name: 'other',
        gitlab: { project: 'group/other', webhookSecret: 'hook-secret-other', refs: ['main'] },
        kubernetes: {
          namespace: 'other',
          deployment: 'other',
          containers: { o: '127.0.0.1:5000/group/other' },
        },
      },
    ],
  });
  redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  queues = openQueues({ url: redisUrl, maxRetriesPerRequest: null }, config.redis.prefix);
  state = new TargetState(redis, config.redis.prefix);
  app = createApp({ config, redis, enqueuer: new Enqueuer(queues, state) });
});

afterAll(async () => {
  await queues.close();
  await redis.quit();
});

async function deployJobs(target: string) {
  const jobs = await queues.deploy.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed']);
  return jobs
    .filter((j) => j.data.target === target)
    .map((j) => ({ id: j.id, data: deployJobSchema.parse(j.data) }));
}

describe('POST /webhooks/gitlab answers', () => {
  it('202 and one deploy job per matching target for a successful pipeline, with a deterministic id', async () => {
    const id = nextPipeline++;
    const sha = randomSha();
    const res = await post(pipelineHook({ id, sha }));
    expect(res.status).toBe(202);
    expect(res.headers['x-correlation-id']).toBeTruthy();
    expect(res.body.deploys).toEqual([
      { target: 'app', result: 'queued', jobId: `deploy-app-${id}` },
      { target: 'app-eu', result: 'queued', jobId: `deploy-app-eu-${id}` },
    ]);
    const job = await queues.deploy.getJob(`deploy-app-${id}`);
    expect(job?.data).toMatchObject({
      target: 'app',
      sha,
      ref: 'main',
      pipelineId: id,
      force: false,
      correlationId: res.headers['x-correlation-id'],
    });
    expect(job?.data.trigger).toMatchObject({
      kind: 'webhook',
      user: 'root',
      pipelineSource: 'push',
    });
    // The payload holds no secret.
    expect(JSON.stringify(job?.data)).not.toContain(SECRET);
    // A terminal pipeline also queues the CI image cleanup for targets that have ciTags.
    expect(res.body.cleanups).toEqual([
      { target: 'app', result: 'queued', jobId: `cleanup-ci-app-${id}` },
    ]);
  });

  it('401 without a token and with a wrong one, and queues nothing', async () => {
    const id = nextPipeline++;
    const missing = await request(app)
      .post('/webhooks/gitlab')
      .set({ 'Content-Type': 'application/json', 'X-Gitlab-Event': 'Pipeline Hook' })
      .send(JSON.stringify(pipelineHook({ id })));
    expect(missing.status).toBe(401);
    expect(missing.body.detail).toBe('X-Gitlab-Token header is missing');
    const wrong = await post(pipelineHook({ id }), { 'X-Gitlab-Token': 'hook-secret-apx' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(JSON.stringify(wrong.body)).not.toContain(SECRET);
    expect(await queues.deploy.getJob(`deploy-app-${id}`)).toBeUndefined();
  });

  it('a token for another project authenticates but deploys nothing here', async () => {
    const res = await post(pipelineHook({ id: nextPipeline++ }), {
      'X-Gitlab-Token': 'hook-secret-other',
    });
    expect(res.status).toBe(200);
    expect(res.body.ignored).toMatch(/no target for project group\/app/);
  });

  it('400 for a body that is not JSON', async () => {
    const res = await post('{"object_kind": "pipeline",');
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/not valid JSON/);
  });

  it('400 naming the failing field for an invalid payload', async () => {
    const bad = pipelineHook({ id: nextPipeline++, sha: 'not-a-sha' });
    const res = await post(bad);
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([
      { field: 'object_attributes.sha', message: 'a full commit sha (40 hex characters)' },
    ]);
    expect(res.body.detail).toContain('object_attributes.sha');

    const noProject = { ...pipelineHook(), project: undefined };
    const res2 = await post(noProject);
    expect(res2.status).toBe(400);
    expect(res2.body.errors[0].field).toBe('project');

    const wrongStatus = pipelineHook({ status: 'exploded' });
    expect((await post(wrongStatus)).body.errors[0].field).toBe('object_attributes.status');
  });

  it('400 when X-Gitlab-Event is missing; 200 ignored for other events', async () => {
    const res = await post(pipelineHook(), { 'X-Gitlab-Event': '' });
    expect(res.status).toBe(400);
    expect(res.body.detail).toMatch(/X-Gitlab-Event/);
    const job = await post(
      { object_kind: 'build', project_id: 1 },
      { 'X-Gitlab-Event': 'Job Hook' },
    );
    expect(job.status).toBe(200);
    expect(job.body).toEqual({ ignored: 'event Job Hook does not deploy (only Pipeline Hook)' });
  });

  it('413 for a body over the limit, 415 for another content type', async () => {
    const big = pipelineHook({ id: nextPipeline++ });
    (big as Record<string, unknown>).padding = 'x'.repeat(70 * 1024);
    const res = await post(big);
    expect(res.status).toBe(413);
    expect(res.body.detail).toMatch(/limit/);
    const form = await request(app)
      .post('/webhooks/gitlab')
      .set({
        'Content-Type': 'application/x-www-form-urlencoded',
        'X-Gitlab-Token': SECRET,
        'X-Gitlab-Event': 'Pipeline Hook',
      })
      .send('a=b');
    expect(form.status).toBe(415);
  });

  it('200 ignored, with the reason, for other status, other ref, merge-request and external pipelines', async () => {
    const running = await post(pipelineHook({ id: nextPipeline++, status: 'running' }));
    expect(running.status).toBe(200);
    expect(running.body.ignored).toContain('pipeline status is running, not success');
    expect(running.body.cleanups).toEqual([]);

    const otherRef = await post(pipelineHook({ id: nextPipeline++, ref: 'feature/x' }));
    expect(otherRef.status).toBe(202); // the CI cleanup is still queued: the pipeline ended
    expect(otherRef.body.ignored).toContain('ref feature/x is not deployed');
    expect(otherRef.body.deploys.every((d: { result: string }) => d.result === 'skipped')).toBe(
      true,
    );

    const mr = await post(
      pipelineHook({ id: nextPipeline++, source: 'merge_request_event', status: 'running' }),
    );
    expect(mr.body.ignored).toContain('pipeline status is running');
    const mrSuccess = await post(
      pipelineHook({ id: nextPipeline++, source: 'merge_request_event' }),
    );
    expect(mrSuccess.body.ignored).toContain('source merge_request_event is not deployed');
    const external = await post(pipelineHook({ id: nextPipeline++, source: 'external' }));
    expect(external.body.ignored).toContain('source external is not deployed');
  });

  it('never 500s on odd input', async () => {
    for (const body of [
      'null',
      '[]',
      '"x"',
      '{"object_kind":"pipeline","object_attributes":null}',
      '{}',
    ]) {
      const res = await post(body);
      expect(res.status, body).toBe(400);
    }
    expect((await request(app).get('/nowhere')).status).toBe(404);
  });
});

describe('Standard Webhooks signatures', () => {
  it('with a signing secret configured, an unsigned or badly signed delivery is 401 and a signed one queues', async () => {
    const body = JSON.stringify(
      pipelineHook(
        { id: nextPipeline++, sha: randomSha() },
        { id: 9, path_with_namespace: 'group/signed' },
      ),
    );
    const token = { 'X-Gitlab-Token': 'hook-secret-signed' };
    const unsigned = await post(body, token);
    expect(unsigned.status).toBe(401);
    expect(unsigned.body.detail).toContain(
      'webhook-id, webhook-timestamp and webhook-signature headers are required',
    );
    const ts = String(Math.floor(Date.now() / 1000));
    const sign = (b: string) =>
      createHmac('sha256', SIGNING_KEY).update(`msg_1.${ts}.${b}`).digest('base64');
    const tampered = await post(body.replace('"main"', '"mainx"'), {
      ...token,
      'webhook-id': 'msg_1',
      'webhook-timestamp': ts,
      'webhook-signature': `v1,${sign(body)}`,
    });
    expect(tampered.status).toBe(401);
    expect(tampered.body.detail).toContain('webhook-signature does not match');
    const signed = await post(body, {
      ...token,
      'webhook-id': 'msg_1',
      'webhook-timestamp': ts,
      'webhook-signature': `v1,${sign(body)}`,
    });
    expect(signed.status).toBe(202);
    expect(signed.body.deploys[0]).toMatchObject({ target: 'signed', result: 'queued' });
  });
});

describe('exactly once, newest first', () => {
  it('a redelivery (same Idempotency-Key) and a re-fired event (new key) create no second job', async () => {
    const id = nextPipeline++;
    const body = pipelineHook({ id, sha: randomSha() });
    const first = await post(body, { 'Idempotency-Key': 'key-1' });
    expect(first.body.deploys[0]).toMatchObject({ result: 'queued' });
    const again = await post(body, { 'Idempotency-Key': 'key-1' });
    expect(again.status).toBe(200);
    expect(again.body.deploys[0]).toMatchObject({ result: 'duplicate', jobId: `deploy-app-${id}` });
    const refired = await post(body, { 'Idempotency-Key': 'key-2' });
    expect(refired.body.deploys[0]).toMatchObject({ result: 'duplicate' });
    expect((await deployJobs('app')).filter((j) => j.data.pipelineId === id)).toHaveLength(1);
  });

  it('a pipeline older than one already queued is superseded and queues nothing', async () => {
    const newer = nextPipeline + 10;
    const older = nextPipeline + 5;
    nextPipeline += 11;
    expect((await post(pipelineHook({ id: newer, sha: randomSha() }))).body.deploys[0].result).toBe(
      'queued',
    );
    const res = await post(pipelineHook({ id: older, sha: randomSha() }));
    expect(res.status).toBe(202); // its CI image cleanup is still queued
    expect(res.body.ignored).toContain('superseded');
    expect(res.body.deploys[0]).toMatchObject({
      result: 'superseded',
      reason: expect.stringContaining(`pipeline ${older} is older than pipeline ${newer}`),
    });
    expect(await queues.deploy.getJob(`deploy-app-${older}`)).toBeUndefined();
    expect(await state.watermark('app')).toBe(newer);
  });

  it('concurrent identical deliveries still make one job', async () => {
    const id = nextPipeline++;
    const body = pipelineHook({ id, sha: randomSha() });
    await Promise.all(Array.from({ length: 8 }, () => post(body)));
    expect((await deployJobs('app')).filter((j) => j.data.pipelineId === id)).toHaveLength(1);
  });
});

describe('health', () => {
  it('/healthz is up and /readyz sees Redis', async () => {
    expect((await request(app).get('/healthz')).body).toEqual({ status: 'ok' });
    expect((await request(app).get('/readyz')).body).toEqual({ status: 'ready', redis: 'ok' });
  });

  it('/readyz answers 503 when Redis is unreachable', async () => {
    const dead = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
    });
    dead.on('error', () => undefined);
    const app2 = createApp({ config, redis: dead, enqueuer: new Enqueuer(queues, state) });
    const res = await request(app2).get('/readyz');
    expect(res.status).toBe(503);
    dead.disconnect();
  });
});
