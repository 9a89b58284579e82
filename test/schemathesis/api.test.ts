/**
 * Property-based robustness of the REST API: schemathesis (PyPI, pinned in
 * scripts/schemathesis.sh) generates requests from the OpenAPI document a running rollhook
 * serves and checks every answer. The test fails on any 5xx, any response that the document
 * does not describe, invalid input that is accepted, or access without the token.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { deployAccepted } from '../../src/http/api/schemas.ts';
import { startOperatorStack, type OperatorStack } from '../support/operator-stack.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
let stack: OperatorStack;

beforeAll(async () => {
  stack = await startOperatorStack({
    redisUrl: inject('redisUrl'),
    registry: inject('registry'),
    stepMs: 10,
  });
  // Releases with images, so that rollbacks and job lookups reach their success paths too.
  for (let i = 0; i < 3; i++) {
    const p = stack.pipeline();
    await stack.pushRelease(p.sha);
    const res = await request(stack.url)
      .post('/api/v1/targets/app/deployments')
      .set('Authorization', `Bearer ${stack.tokens.ops}`)
      .send({ sha: p.sha });
    expect(res.status, res.text).toBe(202);
    const id = deployAccepted.parse(res.body).jobId;
    for (let n = 0; n < 200 && (await stack.queues.deploy.getJobState(id)) !== 'completed'; n++)
      await new Promise((r) => setTimeout(r, 50));
  }
  stack.pipeline({ ref: 'main' });
});

afterAll(async () => {
  await stack?.stop();
});

function runScript(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    // Asynchronous on purpose: the server under test runs in this process.
    const child = spawn('bash', ['scripts/schemathesis.sh', ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

it('schemathesis: no 5xx, every response as the document says, bad input and missing auth refused', async () => {
  const started = performance.now();
  const { code, output } = await runScript(
    [stack.url, '--report-junit-path', 'test-artifacts/schemathesis/junit.xml'],
    { ROLLHOOK_TOKEN: stack.tokens.ops, NO_COLOR: '1' },
  );
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    `schemathesis finished in ${seconds} s (exit ${code})\n${output.split('\n').slice(-25).join('\n')}\n`,
  );
  expect(code, output).toBe(0);
  // it really tested: every operation, many cases
  expect(output).toMatch(/Selected: 5\/5\s+Tested: 5/);
  const generated = Number(/(\d+) generated/.exec(output)?.[1] ?? 0);
  expect(generated).toBeGreaterThan(200);
  const junit = readFileSync(join(root, 'test-artifacts/schemathesis/junit.xml'), 'utf8');
  for (const op of [
    'GET /api/v1/targets',
    'GET /api/v1/targets/{name}/deployments',
    'POST /api/v1/targets/{name}/deployments',
    'POST /api/v1/targets/{name}/rollback',
    'GET /api/v1/jobs/{id}',
  ]) {
    expect(junit).toContain(`name="${op}"`);
  }
}, 900_000);
