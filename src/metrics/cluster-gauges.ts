import type { Queue } from 'bullmq';
import { logger } from '../log.ts';
import type { TargetState } from '../targets/state.ts';
import type { RollhookMetrics } from './metrics.ts';

export interface ClusterSources {
  /** queue name -> queue */
  queues: Record<string, Pick<Queue, 'getJobCounts' | 'getJobs'>>;
  /** the queue whose active jobs are rollouts */
  deployQueue: string;
  state: Pick<TargetState, 'lastSuccessAt'>;
  targets: readonly string[];
}

export const JOB_STATES = [
  'waiting',
  'active',
  'delayed',
  'prioritized',
  'waiting-children',
  'completed',
  'failed',
] as const;

interface Snapshot {
  ok: boolean;
  counts: { queue: string; state: string; n: number }[];
  active: Map<string, number>;
  lastSuccess: Map<string, number>;
}

// Redis connections here queue commands while disconnected (BullMQ needs that): a scrape
// must not hang with them, Prometheus would only see a timeout.
const READ_TIMEOUT_MS = 2000;

/**
 * Gauges about the whole system rather than one process, read from Redis when Prometheus
 * scrapes: any number of API and worker processes would otherwise each report their own
 * partial view. Registered only where the API runs (role api or all), so that summing over
 * scraped processes never counts a queue twice.
 *
 * A Redis failure during a scrape leaves these gauges empty and sets rollhook_state_up to 0;
 * the process-local metrics are still served.
 */
export function addClusterGauges(metrics: RollhookMetrics, src: ClusterSources): void {
  // prom-client starts every metric's collect in the same tick of a scrape: the gauges of
  // one scrape share the read in flight, and the next scrape reads afresh.
  let inFlight: Promise<Snapshot> | undefined;
  const snapshot = (): Promise<Snapshot> =>
    (inFlight ??= readWithin(src, READ_TIMEOUT_MS).finally(() => {
      inFlight = undefined;
    }));

  metrics.gauge({
    name: 'rollhook_queue_jobs',
    help: 'Jobs in each rollhook queue, by state',
    labelNames: ['queue', 'state'],
    collect: async (g) => {
      const s = await snapshot();
      g.reset();
      for (const c of s.counts) g.set({ queue: c.queue, state: c.state }, c.n);
    },
  });

  metrics.gauge({
    name: 'rollhook_rollouts_in_progress',
    help: 'Deploy and rollback jobs running now, by target',
    labelNames: ['target'],
    collect: async (g) => {
      const s = await snapshot();
      g.reset();
      if (!s.ok) return;
      for (const t of src.targets) g.set({ target: t }, s.active.get(t) ?? 0);
    },
  });

  metrics.gauge({
    name: 'rollhook_last_successful_deploy_timestamp_seconds',
    help: 'Unix time of the last successful deploy or rollback of each target (absent until the first); alert on time() minus this',
    labelNames: ['target'],
    collect: async (g) => {
      const s = await snapshot();
      g.reset();
      for (const [t, at] of s.lastSuccess) g.set({ target: t }, at);
    },
  });

  metrics.gauge({
    name: 'rollhook_state_up',
    help: '1 when this scrape could read queue and target state from Redis, else 0',
    labelNames: [],
    collect: async (g) => {
      g.set((await snapshot()).ok ? 1 : 0);
    },
  });
}

function failed(): Snapshot {
  return { ok: false, counts: [], active: new Map(), lastSuccess: new Map() };
}

async function readWithin(src: ClusterSources, ms: number): Promise<Snapshot> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Snapshot>((resolve) => {
    timer = setTimeout(() => {
      logger.warn('metrics: Redis did not answer in time', { ms });
      resolve(failed());
    }, ms);
    timer.unref();
  });
  try {
    return await Promise.race([read(src), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function read(src: ClusterSources): Promise<Snapshot> {
  const s: Snapshot = { ok: true, counts: [], active: new Map(), lastSuccess: new Map() };
  try {
    for (const [queue, q] of Object.entries(src.queues)) {
      const counts = await q.getJobCounts(...JOB_STATES);
      for (const state of JOB_STATES) s.counts.push({ queue, state, n: counts[state] ?? 0 });
    }
    const deploy = src.queues[src.deployQueue];
    for (const job of deploy ? await deploy.getJobs(['active']) : []) {
      const target = (job.data as { target?: unknown } | undefined)?.target;
      if (typeof target === 'string') s.active.set(target, (s.active.get(target) ?? 0) + 1);
    }
    const times = await Promise.all(src.targets.map((t) => src.state.lastSuccessAt(t)));
    src.targets.forEach((t, i) => {
      const at = Date.parse(times[i] ?? '');
      if (Number.isFinite(at)) s.lastSuccess.set(t, at / 1000);
    });
  } catch (err) {
    logger.warn('metrics: could not read queue and target state from Redis', {
      error: err instanceof Error ? err.message : String(err),
    });
    return failed();
  }
  return s;
}
