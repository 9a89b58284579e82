/**
 * Benchmark (not a test): webhook ingest. A rollhook API (in process, real Redis) receives
 * GitLab Pipeline Hooks over HTTP; measures answer latency and throughput at a fixed
 * concurrency, for new pipelines (each queues a job) and for redeliveries (answered as
 * duplicates). Run: node bench/ingest.ts [requests] [concurrency]. Writes bench/results/ingest.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { createApp } from '../src/http/app.ts';
import { Enqueuer } from '../src/queue/enqueue.ts';
import { openQueues } from '../src/queue/queues.ts';
import { TargetState } from '../src/targets/state.ts';
import { testConfig } from '../test/support/config.ts';
import { pipelineHook, randomSha } from '../test/support/payloads.ts';
import { startRedis } from '../test/support/redis.ts';

process.env.LOG_SILENT ??= '1';
const total = Number(process.argv[2] ?? 2000);
const concurrency = Number(process.argv[3] ?? 16);

const redisServer = await startRedis();
const config = testConfig({ redisUrl: redisServer.url });
const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
const queues = openQueues(
  { url: redisServer.url, maxRetriesPerRequest: null },
  config.redis.prefix,
);
const app = createApp({
  config,
  redis,
  enqueuer: new Enqueuer(queues, new TargetState(redis, config.redis.prefix)),
});
const server = app.listen(0, '127.0.0.1');
await new Promise((r) => server.once('listening', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/gitlab`;

async function run(
  bodies: string[],
): Promise<{ ms: number[]; wallMs: number; statuses: Record<number, number> }> {
  const ms: number[] = [];
  const statuses: Record<number, number> = {};
  let i = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (i < bodies.length) {
        const body = bodies[i++] ?? '';
        const t = performance.now();
        const res = await fetch(url, {
          method: 'POST',
          headers: {
            'Content-Type': 'application/json',
            'X-Gitlab-Event': 'Pipeline Hook',
            'X-Gitlab-Token': 'hook-secret-app',
          },
          body,
        });
        await res.arrayBuffer();
        ms.push(performance.now() - t);
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
    }),
  );
  return { ms, wallMs: performance.now() - started, statuses };
}

function summary(r: { ms: number[]; wallMs: number; statuses: Record<number, number> }) {
  const s = [...r.ms].sort((a, b) => a - b);
  const q = (p: number) =>
    Number((s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0).toFixed(2));
  return {
    requests: s.length,
    perSecond: Math.round((s.length / r.wallMs) * 1000),
    msP50: q(0.5),
    msP95: q(0.95),
    msP99: q(0.99),
    msMax: q(1),
    statuses: r.statuses,
  };
}

// Warm up connections and code paths.
await run(
  Array.from({ length: 100 }, (_, k) =>
    JSON.stringify(pipelineHook({ id: 1 + k, sha: randomSha() })),
  ),
);
const fresh = Array.from({ length: total }, (_, k) =>
  JSON.stringify(pipelineHook({ id: 10_000 + k, sha: randomSha() })),
);
const queued = summary(await run(fresh));
const duplicates = summary(await run(fresh.slice(0, Math.min(total, 1000))));

const result = {
  what: 'POST /webhooks/gitlab with GitLab Pipeline Hooks (success, matching ref): answer latency and throughput',
  node: process.version,
  cpus: cpus().length,
  concurrency,
  at: new Date().toISOString(),
  results: {
    'new pipeline (queues a deploy job)': queued,
    'redelivery (answered as duplicate)': duplicates,
  },
};
mkdirSync(new URL('./results', import.meta.url), { recursive: true });
writeFileSync(
  new URL('./results/ingest.json', import.meta.url),
  `${JSON.stringify(result, null, 2)}\n`,
);
console.log(JSON.stringify(result, null, 2));
server.close();
await queues.close();
await redis.quit();
await redisServer.proc.stop();
