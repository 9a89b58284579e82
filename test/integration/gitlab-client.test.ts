/**
 * The GitLab client against the contract server: every call rollhook makes, its outcome,
 * and its failures typed by cause.
 */
import { Writable } from 'node:stream';
import winston from 'winston';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createGitLabClient, type GitLabClient } from '../../src/gitlab/client.ts';
import {
  GitLabAuthError,
  GitLabRequestError,
  GitLabUnavailableError,
} from '../../src/gitlab/errors.ts';
import { logger } from '../../src/log.ts';
import { freePort } from '../support/processes.ts';
import { startGitLabContract, type GitLabContract } from '../support/gitlab-contract.ts';

const TOKEN = 'glpat-client-test-9f8e7d6c';
const READ_TOKEN = 'glpat-reporter-1a2b3c';
const SHA = 'a91957a858320c0e17f3a0eca7cfacbff50ea29a';
const OLD_SHA = 'b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327';
const MR_SHA = 'c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6';
const TAG_SHA = 'd4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a7';

let gl: GitLabContract;
let client: GitLabClient;
const fast = { attempts: 3, baseMs: 1, maxMs: 5 };

beforeAll(async () => {
  gl = await startGitLabContract({
    token: TOKEN,
    readOnlyToken: READ_TOKEN,
    projects: [
      {
        id: 42,
        path_with_namespace: 'facile/my-project',
        refs: ['master', 'release'],
        tags: ['v1.0.0'],
        pipelines: [
          { id: 100, sha: OLD_SHA, ref: 'master', status: 'success', source: 'push' },
          { id: 101, sha: SHA, ref: 'master', status: 'success', source: 'push' },
          { id: 102, sha: SHA, ref: 'master', status: 'failed', source: 'web' },
          {
            id: 103,
            sha: MR_SHA,
            ref: 'refs/merge-requests/7/head',
            status: 'success',
            source: 'merge_request_event',
          },
          { id: 104, sha: OLD_SHA, ref: 'release', status: 'running', source: 'push' },
          { id: 105, sha: TAG_SHA, ref: 'v1.0.0', status: 'success', source: 'push', tag: true },
        ],
        deployments: [
          {
            environment: 'production',
            sha: OLD_SHA,
            ref: 'master',
            status: 'success',
            fromCiJob: true,
          },
        ],
      },
    ],
  });
  client = createGitLabClient({ url: gl.url, token: TOKEN }, { retry: fast });
});
afterAll(async () => {
  await gl.stop();
});
afterEach(() => {
  gl.reset();
});

/** Captures what the logger writes while fn runs. */
async function captureLogs<T>(
  fn: () => Promise<T>,
): Promise<{ result: T | undefined; error: unknown; lines: string }> {
  let lines = '';
  const transport = new winston.transports.Stream({
    stream: new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines += chunk.toString();
        cb();
      },
    }),
  });
  logger.add(transport);
  try {
    return { result: await fn(), error: undefined, lines };
  } catch (error) {
    return { result: undefined, error, lines };
  } finally {
    logger.remove(transport);
  }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('ensureEnvironment', () => {
  it('creates a missing environment with its tier, and finds it the next time without creating', async () => {
    const env = {
      name: 'prod',
      tier: 'production' as const,
      externalUrl: 'https://app.example.com',
    };
    const first = await client.ensureEnvironment(42, env);
    expect(first).toMatchObject({
      name: 'prod',
      tier: 'production',
      created: true,
      updated: false,
    });
    const again = await client.ensureEnvironment(42, env);
    expect(again).toMatchObject({ id: first.id, created: false, updated: false });
    expect(gl.environments(42).find((e) => e.name === 'prod')).toEqual({
      id: first.id,
      name: 'prod',
      tier: 'production',
      external_url: 'https://app.example.com',
    });
    expect(gl.calls().filter((c) => c.method !== 'GET')).toHaveLength(1);
    expect(gl.calls()[0]?.query).toMatchObject({ name: 'prod' });
  });

  it('fixes the tier GitLab guessed for an environment a deployment created', async () => {
    await client.createDeployment(42, {
      environment: 'eu-main',
      sha: SHA,
      ref: 'master',
      tag: false,
    });
    expect(gl.environments(42).find((e) => e.name === 'eu-main')?.tier).toBe('other');
    const r = await client.ensureEnvironment(42, { name: 'eu-main', tier: 'production' });
    expect(r).toMatchObject({ tier: 'production', created: false, updated: true });
    expect(gl.environments(42).find((e) => e.name === 'eu-main')?.tier).toBe('production');
  });

  it('counts "has already been taken" from a concurrent create as done', async () => {
    const results = await Promise.all(
      Array.from({ length: 4 }, () =>
        client.ensureEnvironment('facile/my-project', { name: 'staging', tier: 'staging' }),
      ),
    );
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(gl.environments(42).filter((e) => e.name === 'staging')).toHaveLength(1);
    const posts = gl.calls().filter((c) => c.method === 'POST');
    // every POST but the winner's was refused as taken, and that refusal was not an error
    expect(posts.filter((c) => c.status === 400)).toHaveLength(posts.length - 1);
  });
});

describe('deployments', () => {
  it('creates a running deployment; GitLab fires a Deployment Hook for it', async () => {
    const d = await client.createDeployment(42, {
      environment: 'production',
      sha: SHA,
      ref: 'master',
      tag: false,
    });
    expect(d.reused).toBe(false);
    expect(gl.deployments(42).find((x) => x.id === d.id)).toMatchObject({
      environment: 'production',
      sha: SHA,
      ref: 'master',
      status: 'running',
    });
    expect(gl.hooks()).toEqual([
      expect.objectContaining({
        event: 'Deployment Hook',
        payload: expect.objectContaining({
          deployment_id: d.id,
          status: 'running',
          deployable_url: null,
        }),
      }),
    ]);
  });

  it('takes over the running deployment an earlier attempt created instead of adding another', async () => {
    const first = await client.createDeployment(42, {
      environment: 'production',
      sha: SHA,
      ref: 'master',
      tag: false,
    });
    const retry = await client.createDeployment(42, {
      environment: 'production',
      sha: SHA,
      ref: 'master',
      tag: false,
    });
    expect(retry).toEqual({ id: first.id, reused: true });
    expect(gl.deployments(42).filter((x) => x.status === 'running')).toHaveLength(1);
  });

  it('deploys a tag', async () => {
    const d = await client.createDeployment(42, {
      environment: 'production',
      sha: SHA,
      ref: 'v1.0.0',
      tag: true,
    });
    expect(gl.deployments(42).find((x) => x.id === d.id)).toMatchObject({
      ref: 'v1.0.0',
      tag: true,
    });
  });

  it('marks a deployment success, and treats a repeated success as done', async () => {
    const d = await client.createDeployment(42, {
      environment: 'production',
      sha: SHA,
      ref: 'master',
      tag: false,
    });
    expect(await client.updateDeployment(42, d.id, 'success')).toEqual({ changed: true });
    expect(await client.updateDeployment(42, d.id, 'success')).toEqual({ changed: false });
    expect(gl.deployments(42).find((x) => x.id === d.id)?.status).toBe('success');
    const statuses = gl.hooks().map((h) => (h.payload as { status: string }).status);
    expect(statuses).toEqual(['running', 'success']);
  });

  it('reports a refused transition that is not a repeat as a request error', async () => {
    const d = await client.createDeployment(42, {
      environment: 'production',
      sha: SHA,
      ref: 'master',
      tag: false,
    });
    await client.updateDeployment(42, d.id, 'canceled');
    // canceled -> canceled is a repeat; canceled -> success is allowed by GitLab
    expect(await client.updateDeployment(42, d.id, 'canceled')).toEqual({ changed: false });
    expect(await client.updateDeployment(42, d.id, 'success')).toEqual({ changed: true });
  });

  it('answers a request error, not retried, for a ref GitLab does not have', async () => {
    const err = await rejection(
      client.createDeployment(42, {
        environment: 'production',
        sha: SHA,
        ref: 'no-such-branch',
        tag: false,
      }),
    );
    expect(err).toBeInstanceOf(GitLabRequestError);
    expect(err).toMatchObject({ status: 400, operation: 'createDeployment', retryable: false });
    expect((err as GitLabRequestError).gitlabMessage).toContain('The branch or tag does not exist');
    expect(gl.calls().filter((c) => c.method === 'POST')).toHaveLength(1);
  });

  it('answers an auth error (403) for a deployment a CI job made', async () => {
    const ci = gl.deployments(42)[0];
    if (!ci) throw new Error('seed deployment missing');
    const err = await rejection(client.updateDeployment(42, ci.id, 'failed'));
    expect(err).toBeInstanceOf(GitLabAuthError);
    expect(err).toMatchObject({ status: 403 });
    expect((err as Error).message).toContain(
      'Deployments created using GitLab CI can not be updated',
    );
  });
});

describe('setCommitStatus', () => {
  it('posts a status, and treats re-posting the same running state (GitLab: 400) as done', async () => {
    const opts = {
      name: 'rollhook/my-project-prod',
      targetUrl: 'https://rollhook.example.com/jobs/1',
      description: 'deploying',
    };
    expect(await client.setCommitStatus(42, SHA, 'running', opts)).toEqual({ changed: true });
    expect(await client.setCommitStatus(42, SHA, 'running', opts)).toEqual({ changed: false });
    expect(await client.setCommitStatus(42, SHA, 'success', opts)).toEqual({ changed: true });
    const refused = gl.calls().filter((c) => c.status === 400);
    expect(refused).toHaveLength(1);
    expect(gl.commitStatuses(42)).toEqual([
      expect.objectContaining({
        name: 'rollhook/my-project-prod',
        status: 'success',
        targetUrl: opts.targetUrl,
        description: 'deploying',
        retried: false,
      }),
    ]);
  });

  it('shortens a description to the 255 characters GitLab accepts', async () => {
    await client.setCommitStatus(42, SHA, 'failed', {
      name: 'rollhook/x',
      description: 'e'.repeat(400),
    });
    expect(gl.commitStatuses(42)[0]?.description).toHaveLength(255);
  });

  it('fires a second "success" Pipeline Hook for the pipeline the status joins: the loop rollhook must ignore', async () => {
    await client.setCommitStatus(42, SHA, 'running', {
      name: 'rollhook/prod',
      ref: 'master',
      pipelineId: 101,
    });
    await client.setCommitStatus(42, SHA, 'success', {
      name: 'rollhook/prod',
      ref: 'master',
      pipelineId: 101,
    });
    const events = gl
      .hooks()
      .map(
        (h) => h.payload as { object_attributes: { id: number; status: string; source: string } },
      );
    expect(
      events.map((e) => [
        e.object_attributes.id,
        e.object_attributes.status,
        e.object_attributes.source,
      ]),
    ).toEqual([
      [101, 'running', 'push'],
      [101, 'success', 'push'],
    ]);
    expect(gl.hooks().every((h) => h.recursiveOf === undefined)).toBe(true);
  });
});

describe('pipelines', () => {
  it('finds the latest successful pipeline of a ref with one list request for one item, then reads it for its tag flag', async () => {
    expect(await client.latestSuccessfulPipeline(42, 'master')).toEqual({
      id: 101,
      sha: SHA,
      ref: 'master',
      source: 'push',
      tag: false,
    });
    const [call] = gl.calls();
    expect(call?.query).toEqual({
      ref: 'master',
      status: 'success',
      order_by: 'id',
      sort: 'desc',
      per_page: '1',
    });
    expect(gl.calls().map((c) => `${c.method} ${c.path}`)).toEqual([
      'GET /api/v4/projects/42/pipelines',
      'GET /api/v4/projects/42/pipelines/101',
    ]);
  });

  it('says when the ref of the pipeline is a tag', async () => {
    expect(await client.latestSuccessfulPipeline(42, 'v1.0.0')).toEqual({
      id: 105,
      sha: TAG_SHA,
      ref: 'v1.0.0',
      source: 'push',
      tag: true,
    });
  });

  it('answers null for a ref without a successful pipeline', async () => {
    expect(await client.latestSuccessfulPipeline(42, 'release')).toBeNull();
    expect(await client.latestSuccessfulPipeline(42, 'nothing')).toBeNull();
  });

  it('finds the successful pipeline of a sha, with its ref and source', async () => {
    expect(await client.successfulPipelineForSha(42, SHA)).toEqual({
      id: 101,
      sha: SHA,
      ref: 'master',
      source: 'push',
      tag: false,
    });
    expect(await client.successfulPipelineForSha(42, MR_SHA)).toMatchObject({
      ref: 'refs/merge-requests/7/head',
      source: 'merge_request_event',
    });
    expect(
      await client.successfulPipelineForSha(42, 'ffffffffffffffffffffffffffffffffffffffff'),
    ).toBeNull();
  });

  it('addresses a project by path, URL-encoded', async () => {
    expect(await client.latestSuccessfulPipeline('facile/my-project', 'master')).toMatchObject({
      id: 101,
    });
    expect(gl.calls()[0]?.path).toBe('/api/v4/projects/facile%2Fmy-project/pipelines');
  });
});

describe('errors and retries', () => {
  it('retries a 500 and then succeeds', async () => {
    gl.failNext('POST', '/api/v4/projects/42/deployments', 500, 1);
    const { result, lines } = await captureLogs(() =>
      client.createDeployment(42, {
        environment: 'production',
        sha: SHA,
        ref: 'master',
        tag: false,
      }),
    );
    expect(result?.reused).toBe(false);
    expect(
      gl
        .calls()
        .filter((c) => c.method === 'POST')
        .map((c) => c.status),
    ).toEqual([500, 201]);
    expect(lines).toContain('gitlab call failed, retrying');
    expect(lines).not.toContain(TOKEN);
  });

  it('gives up after the configured attempts with a retryable error', async () => {
    gl.failNext('GET', '**', 503, 10);
    const err = await rejection(client.latestSuccessfulPipeline(42, 'master'));
    expect(err).toBeInstanceOf(GitLabUnavailableError);
    expect(err).toMatchObject({
      status: 503,
      retryable: true,
      operation: 'latestSuccessfulPipeline',
    });
    expect(gl.calls()).toHaveLength(3);
  });

  it("types 429 (after gitbeaker's own quick retries) as unavailable", async () => {
    gl.failNext('GET', '**', 429, 100);
    const one = createGitLabClient({ url: gl.url, token: TOKEN }, { retry: { attempts: 1 } });
    const err = await rejection(one.latestSuccessfulPipeline(42, 'master'));
    expect(err).toBeInstanceOf(GitLabUnavailableError);
    expect(err).toMatchObject({ status: 429 });
  });

  it('types a dropped connection and a closed port as unavailable, with no status', async () => {
    gl.failNext('GET', '**', 0, 10);
    expect(await rejection(client.latestSuccessfulPipeline(42, 'master'))).toMatchObject({
      name: 'GitLabUnavailableError',
      status: undefined,
    });
    const nowhere = createGitLabClient(
      { url: `http://127.0.0.1:${await freePort()}`, token: TOKEN },
      { retry: { attempts: 1 } },
    );
    const err = await rejection(nowhere.latestSuccessfulPipeline(42, 'master'));
    expect(err).toBeInstanceOf(GitLabUnavailableError);
    expect((err as Error).message).toContain('ECONNREFUSED');
  });

  it('types a wrong token (401) and a read-only token writing (403) as auth errors, not retried', async () => {
    const wrong = createGitLabClient({ url: gl.url, token: 'glpat-wrong-token' }, { retry: fast });
    const e401 = await rejection(wrong.latestSuccessfulPipeline(42, 'master'));
    expect(e401).toBeInstanceOf(GitLabAuthError);
    expect(e401).toMatchObject({ status: 401, gitlabMessage: '401 Unauthorized' });
    const reader = createGitLabClient({ url: gl.url, token: READ_TOKEN }, { retry: fast });
    const e403 = await rejection(
      reader.setCommitStatus(42, SHA, 'running', { name: 'rollhook/x' }),
    );
    expect(e403).toBeInstanceOf(GitLabAuthError);
    expect(e403).toMatchObject({ status: 403 });
    expect(gl.calls()).toHaveLength(2);
  });

  it("types an unknown project as a request error carrying GitLab's message", async () => {
    const err = await rejection(client.latestSuccessfulPipeline('facile/nope', 'master'));
    expect(err).toBeInstanceOf(GitLabRequestError);
    expect(err).toMatchObject({ status: 404, gitlabMessage: '404 Project Not Found' });
    expect((err as Error).message).toBe(
      'GitLab latestSuccessfulPipeline (project facile/nope): 404 404 Project Not Found',
    );
  });

  it('never puts the token in an error, its cause, or a log line', async () => {
    gl.failNext('POST', '**', 500, 10);
    const { error, lines } = await captureLogs(() =>
      client.setCommitStatus(42, SHA, 'running', { name: 'rollhook/x' }),
    );
    expect(error).toBeInstanceOf(GitLabUnavailableError);
    expect((error as Error).cause).toBeUndefined();
    expect(JSON.stringify(error)).not.toContain(TOKEN);
    expect(String((error as Error).stack)).not.toContain(TOKEN);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines).not.toContain(TOKEN);
  });

  it('sends nothing but the token and a content type: never X-Gitlab-Event-UUID', async () => {
    await client.ensureEnvironment(42, { name: 'production', tier: 'production' });
    const d = await client.createDeployment(42, {
      environment: 'production',
      sha: SHA,
      ref: 'master',
      tag: false,
    });
    await client.updateDeployment(42, d.id, 'success');
    await client.setCommitStatus(42, SHA, 'success', { name: 'rollhook/x' });
    await client.latestSuccessfulPipeline(42, 'master');
    const calls = gl.calls();
    expect(calls.length).toBeGreaterThanOrEqual(6);
    for (const c of calls) {
      expect(
        Object.keys(c.headers).filter((h) => h.startsWith('x-gitlab') || h === 'idempotency-key'),
      ).toEqual([]);
      expect(c.headers['private-token']).toBe('[redacted]');
    }
    expect(gl.hooks().every((h) => h.recursiveOf === undefined)).toBe(true);
  });

  it('accepts the GitLab URL with a trailing slash or /api/v4', async () => {
    for (const url of [`${gl.url}/`, `${gl.url}/api/v4`, `${gl.url}/api/v4/`]) {
      const c = createGitLabClient({ url, token: TOKEN }, { retry: { attempts: 1 } });
      expect(await c.latestSuccessfulPipeline(42, 'master')).toMatchObject({ id: 101 });
    }
  });
});
