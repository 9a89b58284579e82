import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { stringify } from 'yaml';
import { openQueues, type Queues } from '../../src/queue/queues.ts';
import { spawnNode, waitForOutput, type RollhookProcess } from './spawn-rollhook.ts';

/** The steps of a deploy that succeeds, in order, as saved on its job. */
export const SUCCESS_STEPS = [
  'guard',
  'resolve',
  'report',
  'patch',
  'watch',
  'promote',
  'clean',
  'finish',
];

/** Writes a rollhook config file (YAML) in a fresh temp dir and returns its path. */
export function writeConfig(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'rollhook-e2e-'));
  const file = join(dir, 'rollhook.yaml');
  writeFileSync(file, stringify(config));
  return file;
}

/** rollhook as `npm start` runs it: `node src/main.ts --config FILE [--role R]`. */
export async function startRollhook(
  configFile: string,
  env: NodeJS.ProcessEnv,
  role: 'all' | 'api' | 'worker' = 'all',
): Promise<RollhookProcess> {
  const p = spawnNode('src/main.ts', ['--config', configFile, '--role', role], {
    LOG_LEVEL: 'info',
    ...env,
  });
  await waitForOutput(
    p,
    role === 'worker' ? /"message":"workers started"/ : /"message":"listening"/,
    30_000,
  );
  return p;
}

export function queuesFor(redisUrl: string, prefix: string): Queues {
  return openQueues({ url: redisUrl, maxRetriesPerRequest: null }, prefix);
}

/** Waits for a job to reach one of the states; fails with its state, progress and error. */
export async function waitForJob(
  queues: Queues,
  id: string,
  states: string[],
  timeoutMs = 90_000,
): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await queues.deploy.getJob(id);
    const state = job ? await job.getState() : 'missing';
    if (job && states.includes(state)) return job;
    if (Date.now() > deadline) {
      throw new Error(
        `job ${id} is ${state}, not ${states.join('/')}; progress ${JSON.stringify(job?.progress)}; error ${job?.failedReason}`,
      );
    }
    await new Promise((r) => setTimeout(r, 150));
  }
}

export async function postWebhook(
  url: string,
  token: string,
  payload: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/webhooks/gitlab`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'X-Gitlab-Event': 'Pipeline Hook',
      'X-Gitlab-Token': token,
      ...headers,
    },
    body: JSON.stringify(payload),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
