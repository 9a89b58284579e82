/**
 * The queue dashboard in a real browser: Debian's chromium driven by playwright-core logs in,
 * sees a running deploy job with its progress, and leaves a screenshot in test-artifacts/.
 * Without a login every dashboard request is 401; a viewer cannot act on jobs.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { deployAccepted } from '../../src/http/api/schemas.ts';
import { requireBinary } from '../support/processes.ts';
import { startOperatorStack, type OperatorStack } from '../support/operator-stack.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const artifacts = join(root, 'test-artifacts');
const CHROMIUM = '/usr/bin/chromium';
let stack: OperatorStack;
const profiles: string[] = [];

const basic = (name: string, password: string) =>
  `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}`;

async function browser(credentials?: {
  username: string;
  password: string;
}): Promise<BrowserContext> {
  requireBinary(
    CHROMIUM,
    "install it with 'apt-get install chromium' (scripts/ensure-deps.sh does)",
  );
  const profile = mkdtempSync(join(tmpdir(), 'rollhook-chromium-'));
  profiles.push(profile);
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1400, height: 900 },
    ...(credentials ? { httpCredentials: credentials } : {}),
  });
}

beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
  stack = await startOperatorStack({
    redisUrl: inject('redisUrl'),
    registry: inject('registry'),
    stepMs: 200,
  });
});
afterAll(async () => {
  await stack?.stop();
  for (const p of profiles) rmSync(p, { recursive: true, force: true });
});

describe('queue dashboard', () => {
  it('401 without a login, for the page and its API alike; 403 for a token that may not see every target', async () => {
    for (const path of [
      '/admin/queues',
      '/admin/queues/',
      '/admin/queues/api/queues',
      '/admin/queues/static/favicon-32x32.png',
    ]) {
      const res = await request(stack.url).get(path);
      expect(res.status, path).toBe(401);
      expect(res.headers['www-authenticate'], path).toMatch(/^Basic realm="rollhook dashboard"/);
    }
    expect(
      (
        await request(stack.url)
          .get('/admin/queues')
          .set('Authorization', basic('ops', 'wrong-password'))
      ).status,
    ).toBe(401);
    expect(
      (
        await request(stack.url)
          .get('/admin/queues')
          .set('Authorization', basic(stack.dashboard.viewer.name, stack.dashboard.admin.password))
      ).status,
    ).toBe(401);
    expect(
      (
        await request(stack.url)
          .get('/admin/queues/api/queues')
          .set('Authorization', basic('token', stack.tokens.appDeployer))
      ).status,
    ).toBe(403);
    expect(
      (
        await request(stack.url)
          .get('/admin/queues/api/queues')
          .set('Authorization', `Bearer ${stack.tokens.reader}`)
      ).status,
    ).toBe(200);
  });

  it('an unauthenticated browser gets 401 and no board', async () => {
    const ctx = await browser();
    try {
      const page = await ctx.newPage();
      // Headless Chromium cancels the login prompt: the navigation fails on the 401.
      const seen: number[] = [];
      page.on('response', (r) => seen.push(r.status()));
      await expect(page.goto(`${stack.url}/admin/queues`)).rejects.toThrow(
        /ERR_INVALID_AUTH_CREDENTIALS/,
      );
      expect(seen).toEqual([401]);
      expect(await page.getByText('cleanup-ci').count()).toBe(0);
    } finally {
      await ctx.close();
    }
  });

  it('logs in, sees every rollhook queue and a running deploy job with its progress; screenshot saved', async () => {
    // the deploy stays in its watch step (2 of 3 replicas) until released below
    stack.hold();
    const p = stack.pipeline();
    const res = await request(stack.url)
      .post('/api/v1/targets/app/deployments')
      .set('Authorization', `Bearer ${stack.tokens.ops}`)
      .send({ sha: p.sha });
    expect(res.status, res.text).toBe(202);
    const jobId = deployAccepted.parse(res.body).jobId;

    const ctx = await browser({
      username: stack.dashboard.admin.name,
      password: stack.dashboard.admin.password,
    });
    try {
      const page = await ctx.newPage();
      const overview = await page.goto(`${stack.url}/admin/queues`);
      expect(overview?.status()).toBe(200);
      // every rollhook queue is listed
      await page.getByText('deploy', { exact: true }).first().waitFor({ timeout: 30_000 });
      await page.getByText('cleanup-ci', { exact: true }).first().waitFor({ timeout: 30_000 });
      await page.screenshot({ path: join(artifacts, 'dashboard-overview.png'), fullPage: true });

      // the deploy queue's active jobs: ours, in its watch step, with the replica count
      await page.goto(`${stack.url}/admin/queues/queue/deploy?status=active`);
      const title = `deploy app ${p.sha.slice(0, 8)}`;
      await page.getByText(title).first().waitFor({ timeout: 30_000 });
      await page.getByText(jobId).first().waitFor({ timeout: 10_000 });
      // its progress: the step's report in the Progress tab (the board re-polls on its own)
      await page.getByText('Progress', { exact: true }).first().click();
      await page
        .getByText(/updated replicas are available/)
        .first()
        .waitFor({ timeout: 30_000 });
      await page
        .getByText(/"watch"/)
        .first()
        .waitFor({ timeout: 5_000 });
      const shot = join(artifacts, 'dashboard-deploy-progress.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(statSync(shot).size).toBeGreaterThan(10_000);
      // the progress ring the board draws from the `progress` percentage rollhook adds
      const percent = Number(/(\d+)%/.exec(await page.locator('body').innerText())?.[1]);
      expect(percent).toBe(58); // watch is step 5 of 8 (50 %), two thirds of the way through
      // and once released, the job leaves the active list for completed
      stack.release();
      await page.goto(`${stack.url}/admin/queues/queue/deploy?status=completed`);
      await page.getByText(title).first().waitFor({ timeout: 30_000 });
    } finally {
      stack.release();
      await ctx.close();
    }
  });

  it('a viewer sees the board read-only: job actions are refused', async () => {
    const viewer = basic(stack.dashboard.viewer.name, stack.dashboard.viewer.password);
    const admin = basic(stack.dashboard.admin.name, stack.dashboard.admin.password);
    const page = await request(stack.url).get('/admin/queues').set('Authorization', viewer);
    expect(page.status).toBe(200);
    expect(page.text).toContain('rollhook (read-only)');
    expect(
      (
        await request(stack.url)
          .put('/admin/queues/api/queues/deploy/pause')
          .set('Authorization', viewer)
      ).status,
    ).toBe(405);
    expect(
      (
        await request(stack.url)
          .put('/admin/queues/api/queues/deploy/pause')
          .set('Authorization', basic('token', stack.tokens.reader))
      ).status,
    ).toBe(405);
    expect(await stack.queues.deploy.isPaused()).toBe(false);
    // an admin may: pause and resume
    expect(
      (
        await request(stack.url)
          .put('/admin/queues/api/queues/deploy/pause')
          .set('Authorization', admin)
      ).status,
    ).toBeLessThan(300);
    expect(await stack.queues.deploy.isPaused()).toBe(true);
    expect(
      (
        await request(stack.url)
          .put('/admin/queues/api/queues/deploy/resume')
          .set('Authorization', basic('token', stack.tokens.ops))
      ).status,
    ).toBeLessThan(300);
    expect(await stack.queues.deploy.isPaused()).toBe(false);
  });
});
