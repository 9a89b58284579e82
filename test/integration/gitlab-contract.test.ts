/**
 * The GitLab contract server rejects what GitLab rejects, with GitLab's status and body.
 * Each expectation here comes from GitLab's source or its request specs; if the contract
 * were lax, the wrapper's tests against it would prove nothing.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGitLabContract, type GitLabContract } from '../support/gitlab-contract.ts';

const TOKEN = 'glpat-contract-test-token';
const READ_TOKEN = 'glpat-reporter-token';
const SHA = 'a91957a858320c0e17f3a0eca7cfacbff50ea29a';
const OTHER_SHA = 'b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327';
const UNKNOWN_SHA = 'ffffffffffffffffffffffffffffffffffffffff';

let gl: GitLabContract;

beforeAll(async () => {
  gl = await startGitLabContract({
    token: TOKEN,
    readOnlyToken: READ_TOKEN,
    projects: [
      {
        id: 42,
        path_with_namespace: 'facile/my-project',
        refs: ['master', 'feature'],
        tags: ['v1.0.0'],
        pipelines: [
          { id: 100, sha: OTHER_SHA, ref: 'master', status: 'success', source: 'push' },
          { id: 101, sha: SHA, ref: 'master', status: 'success', source: 'push' },
          { id: 102, sha: SHA, ref: 'feature', status: 'failed', source: 'push' },
        ],
        deployments: [
          {
            environment: 'production',
            sha: OTHER_SHA,
            ref: 'master',
            status: 'success',
            fromCiJob: true,
          },
        ],
      },
    ],
  });
});
afterAll(async () => {
  await gl.stop();
});
afterEach(() => {
  gl.reset();
});

interface Reply {
  status: number;
  body: unknown;
  headers: Headers;
}

async function api(
  method: string,
  path: string,
  opts: {
    body?: unknown;
    form?: Record<string, string>;
    token?: string | null;
    headers?: Record<string, string>;
  } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (token !== null) headers['private-token'] = token;
  let body: string | undefined;
  if (opts.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(opts.form).toString();
  } else if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const res = await fetch(`${gl.url}/api/v4${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // plain text answers (429, 502) stay text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

const deployment = {
  environment: 'production',
  sha: SHA,
  ref: 'master',
  tag: false,
  status: 'running',
};

describe('authentication', () => {
  it('answers 401 without a token and with a wrong one', async () => {
    expect(await api('GET', '/projects/42', { token: null })).toMatchObject({
      status: 401,
      body: { message: '401 Unauthorized' },
    });
    expect(await api('GET', '/projects/42', { token: 'glpat-wrong' })).toMatchObject({
      status: 401,
      body: { message: '401 Unauthorized' },
    });
    expect(
      (await api('POST', '/projects/42/deployments', { token: null, body: deployment })).status,
    ).toBe(401);
  });

  it('accepts the token as PRIVATE-TOKEN, as a Bearer token and as private_token', async () => {
    expect((await api('GET', '/projects/42')).status).toBe(200);
    expect(
      (
        await api('GET', '/projects/42', {
          token: null,
          headers: { authorization: `Bearer ${TOKEN}` },
        })
      ).status,
    ).toBe(200);
    expect((await api('GET', `/projects/42?private_token=${TOKEN}`, { token: null })).status).toBe(
      200,
    );
  });

  it('lets a read-only token read but not write (403)', async () => {
    expect((await api('GET', '/projects/42/pipelines', { token: READ_TOKEN })).status).toBe(200);
    expect(
      await api('POST', '/projects/42/deployments', { token: READ_TOKEN, body: deployment }),
    ).toMatchObject({
      status: 403,
      body: { message: '403 Forbidden' },
    });
  });

  it('never records the token', async () => {
    await api('GET', '/projects/42');
    await api('GET', '/projects/42', {
      token: null,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    await api('GET', `/projects/42?private_token=${TOKEN}`, { token: null });
    const res = await fetch(`${gl.url}/-/calls`);
    const text = await res.text();
    expect(JSON.parse(text)).toHaveLength(3);
    expect(text).not.toContain(TOKEN);
  });
});

describe('projects', () => {
  it('finds a project by id and by URL-encoded path, case-insensitively', async () => {
    expect(await api('GET', '/projects/42')).toMatchObject({
      status: 200,
      body: { id: 42, path_with_namespace: 'facile/my-project', default_branch: 'master' },
    });
    expect(await api('GET', '/projects/facile%2Fmy-project')).toMatchObject({
      status: 200,
      body: { id: 42 },
    });
    expect(await api('GET', '/projects/Facile%2FMy-Project')).toMatchObject({
      status: 200,
      body: { id: 42 },
    });
  });

  it('answers 404 Project Not Found for an unknown id or path', async () => {
    expect(await api('GET', '/projects/7')).toMatchObject({
      status: 404,
      body: { message: '404 Project Not Found' },
    });
    expect(await api('GET', '/projects/facile%2Fother/pipelines')).toMatchObject({
      status: 404,
      body: { message: '404 Project Not Found' },
    });
    // an unencoded path is a different route on GitLab
    expect((await api('GET', '/projects/facile/my-project')).status).toBe(404);
  });

  it('answers 404 for a route GitLab does not have', async () => {
    expect(await api('GET', '/projects/42/nothing-here')).toMatchObject({
      status: 404,
      body: { error: '404 Not Found' },
    });
  });
});

describe('POST /projects/:id/deployments', () => {
  it('creates a running deployment, creates its environment with a guessed tier, and fires a Deployment Hook', async () => {
    const r = await api('POST', '/projects/42/deployments', {
      body: { ...deployment, environment: 'prod-eu' },
    });
    expect(r).toMatchObject({
      status: 201,
      body: {
        sha: SHA,
        ref: 'master',
        status: 'running',
        deployable: null,
        environment: { name: 'prod-eu', tier: 'production' },
      },
    });
    const hooks = gl.hooks();
    expect(hooks).toHaveLength(1);
    expect(hooks[0]).toMatchObject({
      event: 'Deployment Hook',
      payload: {
        object_kind: 'deployment',
        status: 'running',
        environment: 'prod-eu',
        deployable_id: null,
        deployable_url: null,
        short_sha: SHA.slice(0, 8),
      },
    });
  });

  it('guesses tiers the way GitLab does', async () => {
    for (const [name, tier] of [
      ['review/feature-x', 'development'],
      ['qa', 'testing'],
      ['staging', 'staging'],
      ['live', 'production'],
      ['elsewhere', 'other'],
    ]) {
      const r = await api('POST', '/projects/42/deployments', {
        body: { ...deployment, environment: name },
      });
      expect(r.body).toMatchObject({ environment: { name, tier } });
    }
  });

  it('names every missing parameter, as Grape does', async () => {
    expect(await api('POST', '/projects/42/deployments', { body: {} })).toMatchObject({
      status: 400,
      body: {
        error:
          'environment is missing, sha is missing, ref is missing, tag is missing, status is missing',
      },
    });
  });

  it('rejects empty strings, wrong types and values outside the list', async () => {
    expect(
      (await api('POST', '/projects/42/deployments', { body: { ...deployment, environment: '' } }))
        .body,
    ).toEqual({ error: 'environment is empty' });
    expect(
      (await api('POST', '/projects/42/deployments', { body: { ...deployment, tag: 'maybe' } }))
        .body,
    ).toEqual({ error: 'tag is invalid' });
    expect(
      (
        await api('POST', '/projects/42/deployments', {
          body: { ...deployment, status: 'created' },
        })
      ).body,
    ).toEqual({
      error: 'status does not have a valid value',
    });
    expect(
      (await api('POST', '/projects/42/deployments', { body: { ...deployment, status: 'done' } }))
        .status,
    ).toBe(400);
  });

  it('answers 400 for a ref or a sha the repository does not have', async () => {
    expect(
      await api('POST', '/projects/42/deployments', {
        body: { ...deployment, ref: 'no-such-branch' },
      }),
    ).toMatchObject({
      status: 400,
      body: { message: { ref: ['The branch or tag does not exist'] } },
    });
    expect(
      await api('POST', '/projects/42/deployments', { body: { ...deployment, sha: UNKNOWN_SHA } }),
    ).toMatchObject({
      status: 400,
      body: { message: { sha: ['The commit does not exist'] } },
    });
    expect(gl.deployments(42)).toHaveLength(1);
  });

  it('rejects an environment name GitLab does not allow', async () => {
    expect(
      await api('POST', '/projects/42/deployments', {
        body: { ...deployment, environment: 'prod:eu' },
      }),
    ).toMatchObject({
      status: 400,
      body: { message: { name: [expect.stringContaining('can contain only letters')] } },
    });
  });

  it('accepts form-encoded and multipart bodies and query parameters, as GitLab does', async () => {
    const form = await api('POST', '/projects/42/deployments', {
      form: { environment: 'production', sha: SHA, ref: 'v1.0.0', tag: 'true', status: 'running' },
    });
    expect(form).toMatchObject({ status: 201, body: { ref: 'v1.0.0', status: 'running' } });

    const multipart = new FormData();
    for (const [k, v] of Object.entries({
      environment: 'production',
      sha: SHA,
      ref: 'master',
      tag: 'false',
      status: 'success',
    }))
      multipart.append(k, v);
    const res = await fetch(`${gl.url}/api/v4/projects/42/deployments`, {
      method: 'POST',
      headers: { 'private-token': TOKEN },
      body: multipart,
    });
    expect(res.status).toBe(201);

    const q = new URLSearchParams({
      environment: 'production',
      sha: SHA,
      ref: 'master',
      tag: '0',
      status: 'failed',
    });
    expect((await api('POST', `/projects/42/deployments?${q.toString()}`)).status).toBe(201);
  });

  it("returns the environment's last successful deployment when the request repeats it", async () => {
    const first = await api('POST', '/projects/42/deployments', {
      body: { ...deployment, status: 'success' },
    });
    const again = await api('POST', '/projects/42/deployments', {
      body: { ...deployment, status: 'success' },
    });
    expect(again.status).toBe(201);
    expect((again.body as { id: number }).id).toBe((first.body as { id: number }).id);
    // a running one is never deduplicated
    const r1 = await api('POST', '/projects/42/deployments', { body: deployment });
    const r2 = await api('POST', '/projects/42/deployments', { body: deployment });
    expect((r1.body as { id: number }).id).not.toBe((r2.body as { id: number }).id);
  });
});

describe('PUT /projects/:id/deployments/:deployment_id', () => {
  async function running(): Promise<number> {
    const r = await api('POST', '/projects/42/deployments', { body: deployment });
    return (r.body as { id: number }).id;
  }

  it('moves a running deployment to success and fires a Deployment Hook', async () => {
    const id = await running();
    expect(
      await api('PUT', `/projects/42/deployments/${id}`, { body: { status: 'success' } }),
    ).toMatchObject({ status: 200, body: { id, status: 'success' } });
    expect(gl.hooks().map((h) => (h.payload as { status: string }).status)).toEqual([
      'running',
      'success',
    ]);
  });

  it('refuses the transitions GitLab refuses, with its validation message', async () => {
    const id = await running();
    expect(
      await api('PUT', `/projects/42/deployments/${id}`, { body: { status: 'running' } }),
    ).toMatchObject({
      status: 400,
      body: { message: { status: ['cannot transition via "run"'] } },
    });
    await api('PUT', `/projects/42/deployments/${id}`, { body: { status: 'success' } });
    expect(
      await api('PUT', `/projects/42/deployments/${id}`, { body: { status: 'success' } }),
    ).toMatchObject({
      status: 400,
      body: { message: { status: ['cannot transition via "succeed"'] } },
    });
    // GitLab's state machine lets a success become failed (a rollback marks it so)
    expect(
      (await api('PUT', `/projects/42/deployments/${id}`, { body: { status: 'failed' } })).status,
    ).toBe(200);
  });

  it('answers 403 for a deployment a CI job made', async () => {
    const ci = gl.deployments(42)[0];
    expect(
      await api('PUT', `/projects/42/deployments/${ci?.id}`, { body: { status: 'failed' } }),
    ).toMatchObject({
      status: 403,
      body: {
        message:
          '403 Forbidden - Deployments created using GitLab CI can not be updated using the API',
      },
    });
  });

  it('answers 404 for an unknown deployment and 400 for a bad status', async () => {
    expect(
      await api('PUT', '/projects/42/deployments/999999', { body: { status: 'success' } }),
    ).toMatchObject({ status: 404, body: { message: '404 Not found' } });
    const id = await running();
    expect(
      await api('PUT', `/projects/42/deployments/${id}`, { body: { status: 'blocked' } }),
    ).toMatchObject({
      status: 400,
      body: { error: 'status does not have a valid value' },
    });
    expect(await api('PUT', `/projects/42/deployments/${id}`, { body: {} })).toMatchObject({
      status: 400,
      body: { error: 'status is missing' },
    });
  });
});

describe('GET /projects/:id/deployments', () => {
  it('filters by environment and status and sorts', async () => {
    await api('POST', '/projects/42/deployments', { body: deployment });
    await api('POST', '/projects/42/deployments', { body: { ...deployment, ref: 'feature' } });
    const r = await api(
      'GET',
      '/projects/42/deployments?environment=production&status=running&order_by=id&sort=desc',
    );
    expect(r.status).toBe(200);
    const list = r.body as { ref: string; status: string }[];
    expect(list.map((d) => d.ref)).toEqual(['feature', 'master']);
    expect((await api('GET', '/projects/42/deployments?status=nope')).status).toBe(400);
    expect((await api('GET', '/projects/42/deployments?environment=nowhere')).body).toEqual([]);
  });
});

describe('environments', () => {
  it('creates an environment with a tier and refuses a duplicate name', async () => {
    expect(
      await api('POST', '/projects/42/environments', {
        body: { name: 'prod', tier: 'production', external_url: 'https://app.example.com' },
      }),
    ).toMatchObject({
      status: 201,
      body: {
        name: 'prod',
        tier: 'production',
        external_url: 'https://app.example.com',
        state: 'available',
      },
    });
    expect(
      await api('POST', '/projects/42/environments', {
        body: { name: 'prod', tier: 'production' },
      }),
    ).toMatchObject({
      status: 400,
      body: { message: { name: ['has already been taken'] } },
    });
  });

  it('rejects a bad tier, a missing name, a slug and a non-http external URL', async () => {
    expect(
      (await api('POST', '/projects/42/environments', { body: { name: 'x1', tier: 'prod' } })).body,
    ).toEqual({ error: 'tier does not have a valid value' });
    expect((await api('POST', '/projects/42/environments', { body: {} })).body).toEqual({
      error: 'name is missing',
    });
    expect(
      (await api('POST', '/projects/42/environments', { body: { name: 'x2', slug: 'x' } })).body,
    ).toEqual({
      error: 'slug is automatically generated and cannot be changed',
    });
    expect(
      (
        await api('POST', '/projects/42/environments', {
          body: { name: 'x3', external_url: 'ftp://x' },
        })
      ).status,
    ).toBe(400);
  });

  it('lists by exact name, refuses name with search, and updates the tier', async () => {
    await api('POST', '/projects/42/environments', { body: { name: 'production' } });
    await api('POST', '/projects/42/environments', { body: { name: 'production-eu' } });
    const byName = await api('GET', '/projects/42/environments?name=production');
    expect((byName.body as { name: string }[]).map((e) => e.name)).toEqual(['production']);
    expect(await api('GET', '/projects/42/environments?name=production&search=prod')).toMatchObject(
      {
        status: 400,
        body: { error: 'name, search cannot be used together' },
      },
    );
    const id = (byName.body as { id: number }[])[0]?.id;
    expect(
      await api('PUT', `/projects/42/environments/${id}`, { body: { tier: 'staging' } }),
    ).toMatchObject({ status: 200, body: { tier: 'staging' } });
  });
});

describe('POST /projects/:id/statuses/:sha', () => {
  it('adds an external job to the newest pipeline of the sha and fires Pipeline Hooks as its status changes', async () => {
    const running = await api('POST', `/projects/42/statuses/${SHA}`, {
      body: { state: 'running', name: 'rollhook/prod', ref: 'master' },
    });
    expect(running).toMatchObject({
      status: 201,
      body: { status: 'running', name: 'rollhook/prod', ref: 'master', pipeline_id: 101 },
    });
    await api('POST', `/projects/42/statuses/${SHA}`, {
      body: { state: 'success', name: 'rollhook/prod', ref: 'master' },
    });
    const hooks = gl
      .hooks()
      .map(
        (h) => h.payload as { object_attributes: { id: number; status: string; source: string } },
      );
    // the push pipeline goes running, then success again: a second "success" for the same pipeline
    expect(
      hooks.map((h) => [
        h.object_attributes.id,
        h.object_attributes.status,
        h.object_attributes.source,
      ]),
    ).toEqual([
      [101, 'running', 'push'],
      [101, 'success', 'push'],
    ]);
  });

  it('creates a pipeline with source external when the sha has none', async () => {
    // a commit on main that no CI pipeline ran for
    const newSha = 'c0ffee0000000000000000000000000000000001';
    const fresh = await startGitLabContract({
      token: TOKEN,
      projects: [
        {
          id: 1,
          path_with_namespace: 'g/p',
          refs: ['main'],
          commits: [{ sha: newSha, refs: ['main'] }],
        },
      ],
    });
    try {
      const res = await fetch(`${fresh.url}/api/v4/projects/1/statuses/${newSha}`, {
        method: 'POST',
        headers: { 'private-token': TOKEN, 'content-type': 'application/json' },
        body: JSON.stringify({ state: 'success', name: 'rollhook/prod' }),
      });
      expect(res.status).toBe(201);
      expect(fresh.pipelines(1)).toEqual([
        expect.objectContaining({
          sha: newSha,
          ref: 'main',
          source: 'external',
          status: 'success',
        }),
      ]);
      expect(fresh.hooks()).toEqual([
        expect.objectContaining({
          event: 'Pipeline Hook',
          payload: expect.objectContaining({
            object_attributes: expect.objectContaining({ source: 'external', status: 'success' }),
          }),
        }),
      ]);
    } finally {
      await fresh.stop();
    }
  });

  it("answers 400 with GitLab's state machine message when the same pending or running state is posted again", async () => {
    await api('POST', `/projects/42/statuses/${SHA}`, {
      body: { state: 'running', name: 'deploy' },
    });
    expect(
      await api('POST', `/projects/42/statuses/${SHA}`, {
        body: { state: 'running', name: 'deploy' },
      }),
    ).toMatchObject({
      status: 400,
      body: {
        message:
          'Cannot transition status via :run from :running (Reason(s): Status cannot transition via "run")',
      },
    });
    await api('POST', `/projects/42/statuses/${SHA}`, {
      body: { state: 'pending', name: 'other' },
    });
    expect(
      await api('POST', `/projects/42/statuses/${SHA}`, {
        body: { state: 'pending', name: 'other' },
      }),
    ).toMatchObject({
      status: 400,
      body: {
        message:
          'Cannot transition status via :enqueue from :pending (Reason(s): Status cannot transition via "enqueue")',
      },
    });
  });

  it('adds a new job for a terminal state posted again and marks the old one retried, as GitLab does', async () => {
    expect(
      (
        await api('POST', `/projects/42/statuses/${SHA}`, {
          body: { state: 'success', name: 'deploy' },
        })
      ).status,
    ).toBe(201);
    expect(
      (
        await api('POST', `/projects/42/statuses/${SHA}`, {
          body: { state: 'success', name: 'deploy' },
        })
      ).status,
    ).toBe(201);
    expect(gl.commitStatuses(42).map((s) => [s.status, s.retried])).toEqual([
      ['success', true],
      ['success', false],
    ]);
  });

  it('rejects a missing or unknown state, an unknown commit, a ref or pipeline that does not match, and a non-http target URL', async () => {
    expect((await api('POST', `/projects/42/statuses/${SHA}`, { body: {} })).body).toEqual({
      error: 'state is missing',
    });
    expect(
      (await api('POST', `/projects/42/statuses/${SHA}`, { body: { state: 'done' } })).body,
    ).toEqual({ error: 'state does not have a valid value' });
    expect(
      await api('POST', `/projects/42/statuses/${UNKNOWN_SHA}`, { body: { state: 'success' } }),
    ).toMatchObject({
      status: 404,
      body: { message: '404 Commit Not Found' },
    });
    expect(
      await api('POST', `/projects/42/statuses/${SHA}`, {
        body: { state: 'success', pipeline_id: 100 },
      }),
    ).toMatchObject({
      status: 404,
      body: { message: '404 Pipeline for pipeline_id, sha and ref Not Found' },
    });
    expect(
      (
        await api('POST', `/projects/42/statuses/${SHA}`, {
          body: { state: 'success', pipeline_id: 'abc' },
        })
      ).body,
    ).toEqual({ error: 'pipeline_id is invalid' });
    expect(
      await api('POST', `/projects/42/statuses/${SHA}`, {
        body: { state: 'success', target_url: 'javascript:alert(1)' },
      }),
    ).toMatchObject({
      status: 400,
      body: { message: { target_url: ['is blocked: Only allowed schemes are http, https'] } },
    });
    expect(
      await api('POST', `/projects/42/statuses/${SHA}`, {
        body: { state: 'success', description: 'x'.repeat(256) },
      }),
    ).toMatchObject({
      status: 400,
      body: { message: { description: ['is too long (maximum is 255 characters)'] } },
    });
  });

  it('records which request carried X-Gitlab-Event-UUID, as GitLab does to spot recursive hooks', async () => {
    await api('POST', `/projects/42/statuses/${SHA}`, {
      body: { state: 'running' },
      headers: { 'x-gitlab-event-uuid': 'abc-123' },
    });
    expect(gl.hooks()[0]?.recursiveOf).toBe('abc-123');
  });
});

describe('GET /projects/:id/pipelines', () => {
  it('filters by ref, sha and status, newest id first by default', async () => {
    const r = await api('GET', `/projects/42/pipelines?ref=master&status=success`);
    expect((r.body as { id: number }[]).map((p) => p.id)).toEqual([101, 100]);
    const bySha = await api('GET', `/projects/42/pipelines?sha=${SHA}`);
    expect((bySha.body as { id: number }[]).map((p) => p.id)).toEqual([102, 101]);
    const asc = await api('GET', `/projects/42/pipelines?order_by=id&sort=asc`);
    expect((asc.body as { id: number }[]).map((p) => p.id)).toEqual([100, 101, 102]);
    expect(r.body).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          id: 101,
          sha: SHA,
          ref: 'master',
          status: 'success',
          source: 'push',
          project_id: 42,
        }),
      ]),
    );
  });

  it('paginates with the headers GitLab sends', async () => {
    const p1 = await api('GET', '/projects/42/pipelines?per_page=2');
    expect((p1.body as unknown[]).length).toBe(2);
    expect(
      Object.fromEntries(
        ['x-total', 'x-total-pages', 'x-page', 'x-per-page', 'x-next-page', 'x-prev-page'].map(
          (h) => [h, p1.headers.get(h)],
        ),
      ),
    ).toEqual({
      'x-total': '3',
      'x-total-pages': '2',
      'x-page': '1',
      'x-per-page': '2',
      'x-next-page': '2',
      'x-prev-page': '',
    });
    expect(p1.headers.get('link')).toMatch(
      /<http:\/\/127\.0\.0\.1:\d+\/api\/v4\/projects\/42\/pipelines\?per_page=2&page=2>; rel="next"/,
    );
    const p2 = await api('GET', '/projects/42/pipelines?per_page=2&page=2');
    expect((p2.body as unknown[]).length).toBe(1);
    expect(p2.headers.get('x-next-page')).toBe('');
    expect(p2.headers.get('link')).not.toContain('rel="next"');
    // GitLab caps per_page at 100
    expect(
      (await api('GET', '/projects/42/pipelines?per_page=500')).headers.get('x-per-page'),
    ).toBe('100');
  });

  it('rejects values outside its lists', async () => {
    expect((await api('GET', '/projects/42/pipelines?status=green')).body).toEqual({
      error: 'status does not have a valid value',
    });
    expect((await api('GET', '/projects/42/pipelines?order_by=sha')).body).toEqual({
      error: 'order_by does not have a valid value',
    });
    expect((await api('GET', '/projects/42/pipelines?sort=up')).body).toEqual({
      error: 'sort does not have a valid value',
    });
    expect((await api('GET', '/projects/42/pipelines?page=x')).body).toEqual({
      error: 'page is invalid',
    });
  });
});

describe('failure injection and recording', () => {
  it('answers the injected status the given number of times, then the API again', async () => {
    gl.failNext('GET', '/api/v4/projects/*/pipelines', 500, 2);
    expect(await api('GET', '/projects/42/pipelines')).toMatchObject({
      status: 500,
      body: { message: '500 Internal Server Error' },
    });
    expect((await api('GET', '/projects/42/pipelines')).status).toBe(500);
    expect((await api('GET', '/projects/42/pipelines')).status).toBe(200);
    expect(gl.calls().map((c) => [c.status, c.injected])).toEqual([
      [500, true],
      [500, true],
      [200, false],
    ]);
  });

  it('answers 429 as GitLab rate limiting does, and drops the connection for status 0', async () => {
    gl.failNext('POST', '**', 429);
    const limited = await api('POST', '/projects/42/deployments', { body: deployment });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    gl.failNext('*', /pipelines/, 0);
    await expect(api('GET', '/projects/42/pipelines')).rejects.toThrow('fetch failed');
  });

  it('records method, path, query, body and answer of every call, and the hooks', async () => {
    await api('POST', '/projects/facile%2Fmy-project/deployments', {
      body: deployment,
      headers: { 'user-agent': 'rollhook-test' },
    });
    const [call] = gl.calls();
    expect(call).toMatchObject({
      method: 'POST',
      path: '/api/v4/projects/facile%2Fmy-project/deployments',
      body: deployment,
      status: 201,
      headers: { 'private-token': '[redacted]', 'user-agent': 'rollhook-test' },
    });
    const hooks = (await (await fetch(`${gl.url}/-/hooks`)).json()) as unknown[];
    expect(hooks).toHaveLength(1);
  });

  it('reset() restores the projects as configured', async () => {
    await api('POST', '/projects/42/deployments', { body: deployment });
    expect(gl.deployments(42)).toHaveLength(2);
    gl.reset();
    expect(gl.deployments(42)).toHaveLength(1);
    expect(gl.calls()).toEqual([]);
    expect(gl.hooks()).toEqual([]);
  });
});

describe('webhook delivery', () => {
  it('POSTs recorded hooks with the headers GitLab sends', async () => {
    const { createServer } = await import('node:http');
    const received: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
    const sink = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(200).end('{}');
      });
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
    const addr = sink.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const delivering = await startGitLabContract({
      token: TOKEN,
      projects: [{ id: 1, path_with_namespace: 'g/p', refs: ['main'] }],
      webhook: { url: `http://127.0.0.1:${port}/webhooks/gitlab`, token: 'hook-secret' },
    });
    try {
      delivering.addPipeline(1, { sha: SHA, ref: 'main', status: 'success', source: 'push' });
      const deadline = Date.now() + 5000;
      while (received.length === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(received).toHaveLength(1);
      expect(received[0]?.headers).toMatchObject({
        'x-gitlab-event': 'Pipeline Hook',
        'x-gitlab-token': 'hook-secret',
      });
      expect(received[0]?.headers['idempotency-key']).toEqual(expect.any(String));
      expect(JSON.parse(received[0]?.body ?? '{}')).toMatchObject({
        object_kind: 'pipeline',
        object_attributes: { sha: SHA, status: 'success', source: 'push' },
      });
    } finally {
      await delivering.stop();
      await new Promise<void>((r) => sink.close(() => r()));
    }
  });
});
