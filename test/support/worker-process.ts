/**
 * A rollhook process for tests, wired exactly like `npm start` but with a deploy step that
 * takes DEPLOY_MS and records when it ran, so tests can see overlap and shutdown behaviour.
 * Env: ROLLHOOK_TEST_CONFIG (JSON config), ROLE, DEPLOY_MS.
 */
import { Redis } from 'ioredis';
import { configSchema } from '../../src/config/schema.ts';
import { run, stopOnSignals, type Role } from '../../src/main.ts';

const config = configSchema.parse(JSON.parse(process.env.ROLLHOOK_TEST_CONFIG ?? '{}'));
const deployMs = Number(process.env.DEPLOY_MS ?? 300);
const redis = new Redis(config.redis.url);
const key = `${config.redis.prefix}:test:intervals`;

const service = await run(config, (process.env.ROLE ?? 'worker') as Role, {
  deploy: async (ctx) => {
    const start = Date.now();
    await ctx.steps.run('slow', () => new Promise((r) => setTimeout(r, deployMs)));
    await redis.rpush(
      key,
      JSON.stringify({
        target: ctx.target.name,
        jobId: ctx.job.id,
        pid: process.pid,
        start,
        end: Date.now(),
      }),
    );
    return { outcome: 'success', sha: ctx.data.sha };
  },
});
stopOnSignals({
  stop: async () => {
    await service.stop();
    await redis.quit();
  },
});
process.stdout.write('READY\n');
