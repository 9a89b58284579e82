/**
 * The CLI as a user runs it (`bin/rollhook.ts` in its own process, token from the
 * environment) against a whole rollhook: readable output and the exit codes scripts use.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pipelineHook } from '../support/payloads.ts';
import { freePort } from '../support/processes.ts';
import { startOperatorStack, type OperatorStack } from '../support/operator-stack.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
let stack: OperatorStack;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/rollhook.ts', ...args], {
      cwd: root,
      env: { ...process.env, ROLLHOOK_URL: stack.url, ROLLHOOK_TOKEN: stack.tokens.ops, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const fast = ['--interval', '100ms'];

beforeAll(async () => {
  stack = await startOperatorStack({
    redisUrl: inject('redisUrl'),
    registry: inject('registry'),
    stepMs: 100,
  });
});
afterAll(async () => {
  await stack?.stop();
});

describe('rollhook CLI', () => {
  it('--help lists the commands, the environment and the exit codes', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    for (const word of [
      'deploy',
      'rollback',
      'status',
      'history',
      'ROLLHOOK_TOKEN',
      'ROLLHOOK_URL',
      'Exit codes',
      '7 --wait timed out',
    ])
      expect(r.stdout).toContain(word);
  });

  it('exit 2 without ROLLHOOK_TOKEN or with bad arguments; 3 with a token rollhook does not know', async () => {
    let r = await cli(['status'], { ROLLHOOK_TOKEN: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/ROLLHOOK_TOKEN is not set/);
    r = await cli(['deploy', 'app']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/exactly one of --sha and --ref/);
    r = await cli(['deploy', 'app', '--sha', 'a'.repeat(40), '--ref', 'main']);
    expect(r.code).toBe(2);
    r = await cli(['history', 'app', '--limit', 'many']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/a whole number/);
    r = await cli(['frobnicate']);
    expect(r.code).toBe(2);
    r = await cli(['status'], { ROLLHOOK_TOKEN: 'not-a-token' });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/matches no token/);
    r = await cli(['deploy', 'other', '--ref', 'main'], {
      ROLLHOOK_TOKEN: stack.tokens.appDeployer,
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/may not act on target other/);
  });

  it('exit 6 when rollhook cannot be reached', async () => {
    const r = await cli(['status'], { ROLLHOOK_URL: `http://127.0.0.1:${await freePort()}` });
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/cannot be reached: ECONNREFUSED/);
  });

  it('deploy --sha --wait: a progress line per change, then the steps; exit 0', async () => {
    const p = stack.pipeline();
    const r = await cli(['deploy', 'app', '--sha', p.sha, '--wait', ...fast]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `queued deploy of app: ${p.sha.slice(0, 8)} (main, pipeline #${p.id}) as job deploy-app-${p.id}`,
    );
    expect(r.stdout).toMatch(
      new RegExp(
        `✓ job deploy-app-${p.id}: deploy of app ${p.sha.slice(0, 8)}, completed, success`,
      ),
    );
    for (const step of ['guard', 'resolve', 'patch', 'watch', 'promote'])
      expect(r.stdout).toMatch(new RegExp(`✓ ${step}\\s+\\d+(ms|s)`));
    // stderr is not a terminal here: one line per change, not redrawn
    const lines = r.stderr.trim().split('\n');
    expect(
      lines.some((l) =>
        /deploy app [0-9a-f]{8}: active · watch · \d of 3 updated replicas are available/.test(l),
      ),
    ).toBe(true);
    expect(r.stderr).not.toContain('\r');

    // status shows it
    const s = await cli(['status']);
    expect(s.code).toBe(0);
    const row = s.stdout.split('\n').find((l) => l.startsWith('app '));
    expect(row).toMatch(
      new RegExp(
        `^app\\s+production\\s+${p.sha.slice(0, 8)}\\s+main\\s+#${p.id}\\s+.*ago\\)\\s+ops\\s+deploy ${p.sha.slice(0, 8)} success`,
      ),
    );
    expect(s.stdout.split('\n').find((l) => l.startsWith('other '))).toMatch(
      /^other\s+production\s+-\s+-\s+-/,
    );
    const one = await cli(['status', 'app']);
    expect(one.stdout).toContain(`running   ${p.sha} (main, pipeline #${p.id})`);
    expect(one.stdout).toContain(`image     app: ${stack.appRepo}:prod-${p.sha}`);
    expect((await cli(['status', 'nope'])).code).toBe(4);
  });

  it('exit 5 when refused (already runs, ref not deployable), naming the reason and the job', async () => {
    const current = await stack.state.current('app');
    let r = await cli(['deploy', 'app', '--sha', current?.sha ?? '']);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/already runs .*"force": true/);
    expect(r.stderr).toContain(`rollhook job ${current?.jobId}`);
    r = await cli(['deploy', 'app', '--ref', 'feature/x']);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/does not deploy to app/);
    r = await cli(['history', 'nope']);
    expect(r.code).toBe(4);
  });

  it('exit 1 when the deploy fails', async () => {
    const p = stack.pipeline({ sha: `dead${'2'.repeat(30)}${Date.now().toString(16).slice(-6)}` });
    const r = await cli(['deploy', 'app', '--sha', p.sha, '--wait', ...fast]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /✗ job deploy-app-\d+: .*completed, failed \(rollout ProgressDeadlineExceeded/,
    );
  });

  it('exit 8 when the job ends without deploying (the sha runs already)', async () => {
    const current = await stack.state.current('app');
    // a new pipeline of the sha that runs (a retried pipeline, say): accepted, then skipped
    const { id } = stack.pipeline({ sha: current?.sha ?? '' });
    const hook = await request(stack.url)
      .post('/webhooks/gitlab')
      .set({
        'Content-Type': 'application/json',
        'X-Gitlab-Event': 'Pipeline Hook',
        'X-Gitlab-Token': 'hook-secret-app',
      })
      .send(JSON.stringify(pipelineHook({ id, sha: current?.sha ?? '', status: 'success' })));
    expect(hook.status).toBe(202);
    const r = await cli(['job', `deploy-app-${id}`, '--wait', ...fast]);
    expect(r.code).toBe(8);
    expect(r.stdout).toMatch(/skipped \(app already runs/);
  });

  it('rollback --wait returns to the previous release; history shows it first', async () => {
    const before = await stack.state.current('app');
    const p = stack.pipeline();
    await stack.pushRelease(before?.sha ?? '');
    expect((await cli(['deploy', 'app', '--sha', p.sha, '--wait', ...fast])).code).toBe(0);
    const r = await cli(['rollback', 'app', '--wait', ...fast]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`queued rollback of app to ${before?.sha.slice(0, 8)} (main)`);
    expect(r.stdout).toMatch(/✓ job rollback-app-.*: rollback of app .*completed, success/);
    expect((await stack.state.current('app'))?.sha).toBe(before?.sha);

    const h = await cli(['history', 'app', '-n', '2']);
    expect(h.code).toBe(0);
    const rows = h.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^FINISHED\s+KIND\s+SHA\s+REF\s+PIPELINE\s+OUTCOME\s+BY\s+TOOK\s+JOB$/);
    expect(rows[1]).toMatch(
      new RegExp(`rollback\\s+${before?.sha.slice(0, 8)}\\s+main\\s+#\\d+\\s+success\\s+ops`),
    );
    expect(rows[2]).toMatch(new RegExp(`deploy\\s+${p.sha.slice(0, 8)}\\s+main`));
    expect(rows[3]).toMatch(/^\(1-2 of \d+\)$/);
  });

  it('--json prints the API answers for scripts; progress stays on stderr', async () => {
    const p = stack.pipeline();
    const r = await cli(['--json', 'deploy', 'app', '--sha', p.sha, '--wait', ...fast]);
    expect(r.code).toBe(0);
    const job = JSON.parse(r.stdout) as { id: string; state: string; result: { outcome: string } };
    expect(job).toMatchObject({
      id: `deploy-app-${p.id}`,
      state: 'completed',
      result: { outcome: 'success' },
    });
    const s = JSON.parse((await cli(['status', '--json'])).stdout) as {
      items: { name: string; current: { sha: string } | null }[];
    };
    expect(s.items.find((t) => t.name === 'app')?.current?.sha).toBe(p.sha);
    const j = JSON.parse((await cli(['job', `deploy-app-${p.id}`, '--json'])).stdout) as {
      steps: { name: string }[];
    };
    expect(j.steps.map((x) => x.name)).toEqual(['guard', 'resolve', 'patch', 'watch', 'promote']);
  });

  it('exit 7 when --wait gives up; the job goes on', async () => {
    stack.hold(); // the deploy stays in its watch step until released
    try {
      const p = stack.pipeline();
      const r = await cli([
        'deploy',
        'app',
        '--sha',
        p.sha,
        '--wait',
        '--timeout',
        '500ms',
        ...fast,
      ]);
      expect(r.code).toBe(7);
      expect(r.stderr).toContain(`the job goes on: rollhook job deploy-app-${p.id} --wait`);
      stack.release();
      expect((await cli(['job', `deploy-app-${p.id}`, '--wait', ...fast])).code).toBe(0);
    } finally {
      stack.release();
    }
  });
});
