import { parseArgs } from 'node:util';
import type { Server } from 'node:http';
import { Redis } from 'ioredis';
import { ConfigError } from './config/errors.ts';
import { configPath, loadConfig } from './config/load.ts';
import type { Config } from './config/schema.ts';
import { createApp } from './http/app.ts';
import { operatorRouters } from './http/api/surfaces.ts';
import { startMetricsServer } from './http/metrics-route.ts';
import { createMetrics } from './metrics/metrics.ts';
import { logger } from './log.ts';
import { Enqueuer } from './queue/enqueue.ts';
import { openQueues } from './queue/queues.ts';
import { TargetLocks } from './queue/target-lock.ts';
import { TargetState } from './targets/state.ts';
import { createGitLabClient } from './gitlab/client.ts';
import { KubeAdapter } from './kube/index.ts';
import { ImageRegistry } from './registry/index.ts';
import { makeDeployPipeline, makeRollbackPipeline } from '../workers/deploy/pipeline.ts';
import { makeDeployProcessor, type DeployProcessorDeps } from '../workers/deploy/processor.ts';
import { startWorkers, type Workers } from '../workers/start.ts';
import { makeCleanupCiProcessor } from '../workers/cleanup-ci.ts';

/** The composition root: reads the config, opens the adapters and wires HTTP and workers. */
export type Role = 'all' | 'api' | 'worker';

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { role: { type: 'string', default: 'all' }, config: { type: 'string' } },
    allowPositionals: false,
  });
  const role = values.role as Role;
  if (!['all', 'api', 'worker'].includes(role))
    throw new ConfigError('(command line)', [`--role: must be all, api or worker, got ${role}`]);
  const config = loadConfig(configPath(argv, process.env));
  stopOnSignals(await run(config, role));
}

/** SIGTERM/SIGINT: stop taking work, let running jobs finish (up to the deadline), exit. */
export function stopOnSignals(service: { stop(): Promise<void> }): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info('signal received', { signal });
      service.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error('shutdown failed', { error: err });
          process.exit(1);
        },
      );
    });
  }
}

/** Test seams: replace the deploy or rollback steps (the rest is wired as in production). */
export interface RunOverrides {
  deploy?: DeployProcessorDeps['deploy'];
  rollback?: DeployProcessorDeps['rollback'];
}

export async function run(
  config: Config,
  role: Role,
  overrides: RunOverrides = {},
): Promise<{ stop(): Promise<void> }> {
  // BullMQ needs maxRetriesPerRequest null on connections that block; one shared connection
  // for commands, BullMQ opens its own blocking ones.
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  redis.on('error', (err) => logger.warn('redis connection error', { error: err.message }));
  const connection = { url: config.redis.url, maxRetriesPerRequest: null } as const;
  const state = new TargetState(redis, config.redis.prefix);
  const queues = openQueues(connection, config.redis.prefix);
  const metrics = createMetrics();

  let server: Server | undefined;
  let metricsServer: Server | undefined;
  let workers: Workers | undefined;

  if (role === 'all' || role === 'worker') {
    const locks = new TargetLocks(redis, config.redis.prefix, config.worker.lockTtl);
    const pipelineDeps = {
      config,
      state,
      registry: new ImageRegistry(config.registries, { onRequest: metrics.observeRegistryRequest }),
      kube: new KubeAdapter(),
      gitlab: createGitLabClient(config.gitlab),
    };
    workers = startWorkers({
      config,
      connection,
      cleanupCiProcessor: makeCleanupCiProcessor({ registry: pipelineDeps.registry, config }),
      deployProcessor: makeDeployProcessor({
        config,
        state,
        locks,
        deploy: overrides.deploy ?? makeDeployPipeline(pipelineDeps),
        rollback: overrides.rollback ?? makeRollbackPipeline(pipelineDeps),
        observe: metrics.observeDeploy,
        observeStep: metrics.observeStep,
      }),
    });
    logger.info('workers started', { concurrency: config.worker.concurrency });
    // A worker-only process counts its own deploys: it needs its own /metrics.
    if (role === 'worker') metricsServer = await startMetricsServer(metrics, config);
  }
  if (role === 'all' || role === 'api') {
    const enqueuer = new Enqueuer(queues, state);
    const app = createApp({
      config,
      redis,
      enqueuer,
      observeWebhook: metrics.observeWebhook,
      routers: operatorRouters({ config, state, queues, enqueuer, metrics }),
    });
    server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(config.server.port, config.server.host, () => resolve(s));
      s.once('error', reject);
    });
    const addr = server.address();
    logger.info('listening', {
      port: typeof addr === 'object' && addr ? addr.port : config.server.port,
      role,
    });
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      logger.info('shutting down', { deadlineMs: config.server.shutdownTimeout });
      // Stop taking webhooks first; requests in flight finish (they only enqueue).
      const closed = server
        ? new Promise<void>((r) => server?.close(() => r()))
        : Promise.resolve();
      server?.closeIdleConnections();
      await workers?.close(config.server.shutdownTimeout);
      await closed;
      await queues.close();
      await new Promise<void>((r) => (metricsServer ? metricsServer.close(() => r()) : r()));
      await redis.quit().catch(() => redis.disconnect());
      logger.info('stopped');
    })());
  return { stop };
}

if (import.meta.main) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`rollhook: ${err.message}\n`);
      process.exit(2);
    }
    logger.error('failed to start', { error: err });
    process.exit(1);
  });
}
