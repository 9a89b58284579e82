import type { Router } from 'express';
import type { Config } from '../../config/schema.ts';
import { createGitLabClient, type GitLabClient } from '../../gitlab/client.ts';
import { addClusterGauges } from '../../metrics/cluster-gauges.ts';
import type { RollhookMetrics } from '../../metrics/metrics.ts';
import type { Enqueuer } from '../../queue/enqueue.ts';
import { DEPLOY_QUEUE } from '../../queue/names.ts';
import type { Queues } from '../../queue/queues.ts';
import { ImageRegistry } from '../../registry/index.ts';
import type { TargetState } from '../../targets/state.ts';
import { dashboardRouter } from '../dashboard.ts';
import { metricsRoute } from '../metrics-route.ts';
import { apiRouter } from './router.ts';

export interface OperatorDeps {
  config: Config;
  state: TargetState;
  queues: Queues;
  enqueuer: Enqueuer;
  metrics: RollhookMetrics;
  /** defaults: clients built from the config (registry requests counted in metrics) */
  gitlab?: Pick<GitLabClient, 'latestSuccessfulPipeline' | 'successfulPipelineForSha'>;
  images?: Pick<ImageRegistry, 'digestOf'>;
}

/**
 * What operators use, for the API process: the REST API, the queue dashboard and /metrics
 * (with the system-wide gauges, which only the API process serves).
 */
export function operatorRouters(deps: OperatorDeps): Router[] {
  const { config, queues, metrics } = deps;
  addClusterGauges(metrics, {
    queues: { [queues.deploy.name]: queues.deploy, [queues.cleanupCi.name]: queues.cleanupCi },
    deployQueue: DEPLOY_QUEUE,
    state: deps.state,
    targets: config.targets.map((t) => t.name),
  });
  return [
    apiRouter({
      config,
      state: deps.state,
      queues,
      enqueuer: deps.enqueuer,
      gitlab: deps.gitlab ?? createGitLabClient(config.gitlab),
      images:
        deps.images ??
        new ImageRegistry(config.registries, { onRequest: metrics.observeRegistryRequest }),
    }),
    dashboardRouter({ config, queues: [queues.deploy, queues.cleanupCi] }),
    metricsRoute(metrics, config),
  ];
}
