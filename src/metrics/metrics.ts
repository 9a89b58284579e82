import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What one registry HTTP exchange did (the registry client's onRequest event). */
export interface RegistryRequestSample {
  host: string;
  kind: 'registry' | 'token';
  method: string;
  status: number | 'network-error';
}

/** The outcome names a deploy or rollback can end with, plus `failed` for an attempt that threw. */
export type DeployOutcomeLabel = string;

// Deploys wait for images and rollouts: seconds to tens of minutes.
const DEPLOY_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800];
// Steps range from a Redis read (ms) to a rollout watch (minutes).
const STEP_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600];

/**
 * The process-local metrics of one rollhook process: counters and histograms move where the
 * work happens (webhooks in the API, deploys and registry calls in the worker). Gauges that
 * describe the whole system (queue depths, last success per target) are added by
 * addClusterGauges, read from Redis at scrape time, in the process that serves the API.
 */
export class RollhookMetrics {
  readonly registry: Registry;
  private readonly webhooks: Counter<'result'>;
  private readonly deploys: Counter<'target' | 'outcome'>;
  private readonly deployDuration: Histogram<'target' | 'outcome'>;
  private readonly stepDuration: Histogram<'target' | 'step' | 'status'>;
  private readonly registryRequests: Counter<'host' | 'kind' | 'method' | 'status'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.webhooks = new Counter({
      name: 'rollhook_webhooks_total',
      help: 'GitLab webhook deliveries, by what rollhook answered (queued, ignored, unauthorized, invalid, error)',
      labelNames: ['result'],
      registers,
    });
    this.deploys = new Counter({
      name: 'rollhook_deploys_total',
      help: 'Deploy and rollback job attempts that ended, by target and outcome (failed counts attempts that threw, retried or not)',
      labelNames: ['target', 'outcome'],
      registers,
    });
    this.deployDuration = new Histogram({
      name: 'rollhook_deploy_duration_seconds',
      help: 'Time from taking the target lock to the end of a deploy or rollback attempt',
      labelNames: ['target', 'outcome'],
      buckets: DEPLOY_BUCKETS,
      registers,
    });
    this.stepDuration = new Histogram({
      name: 'rollhook_step_duration_seconds',
      help: 'Time of one deploy step (resolve, patch, watch, promote, clean, ...), by status (done, skipped, failed)',
      labelNames: ['target', 'step', 'status'],
      buckets: STEP_BUCKETS,
      registers,
    });
    this.registryRequests = new Counter({
      name: 'rollhook_registry_requests_total',
      help: 'HTTP requests to container registries and their token servers, by HTTP status (or network-error)',
      labelNames: ['host', 'kind', 'method', 'status'],
      registers,
    });
  }

  // Arrow properties: handed to other modules as plain callbacks.
  readonly observeWebhook = (result: string): void => {
    this.webhooks.inc({ result });
  };

  readonly observeDeploy = (
    target: string,
    result: { outcome: DeployOutcomeLabel },
    ms: number,
  ): void => {
    this.deploys.inc({ target, outcome: result.outcome });
    this.deployDuration.observe({ target, outcome: result.outcome }, ms / 1000);
  };

  readonly observeStep = (target: string, step: string, status: string, ms: number): void => {
    this.stepDuration.observe({ target, step, status }, ms / 1000);
  };

  readonly observeRegistryRequest = (e: RegistryRequestSample): void => {
    this.registryRequests.inc({
      host: e.host,
      kind: e.kind,
      method: e.method,
      status: String(e.status),
    });
  };

  /** A gauge on this registry whose value is computed at scrape time. */
  gauge<L extends string>(opts: {
    name: string;
    help: string;
    labelNames: readonly L[];
    collect: (g: Gauge<L>) => Promise<void>;
  }): Gauge<L> {
    const { collect } = opts;
    return new Gauge<L>({
      name: opts.name,
      help: opts.help,
      labelNames: opts.labelNames,
      registers: [this.registry],
      async collect() {
        await collect(this);
      },
    });
  }

  /** The text exposition format, with its content type. */
  async expose(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): RollhookMetrics {
  return new RollhookMetrics(opts);
}
