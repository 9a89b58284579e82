import express, {
  type Express,
  type NextFunction,
  type Request,
  type Response,
  type Router,
} from 'express';
import helmet from 'helmet';
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.ts';
import { logger } from '../log.ts';
import type { Enqueuer } from '../queue/enqueue.ts';
import { correlation } from './correlation.ts';
import { healthRoutes } from './health.ts';
import { sendProblem } from './problem.ts';
import { gitlabWebhookRoute, type WebhookResult } from './webhooks/gitlab-route.ts';

export interface AppDeps {
  config: Config;
  redis: Redis;
  enqueuer: Enqueuer;
  observeWebhook?: (result: WebhookResult) => void;
  /** further routers (REST API, dashboard, metrics), mounted after the webhook */
  routers?: Router[];
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', true);
  app.use(helmet({ contentSecurityPolicy: false }));
  app.use(correlation);
  app.use(healthRoutes(deps.redis));
  app.use(
    gitlabWebhookRoute({
      config: deps.config,
      enqueuer: deps.enqueuer,
      observe: deps.observeWebhook,
    }),
  );
  for (const r of deps.routers ?? []) app.use(r);

  app.use((req: Request, res: Response) => {
    sendProblem(res, {
      status: 404,
      title: 'Not Found',
      detail: `no route for ${req.method} ${req.path}`,
    });
  });
  // Last resort: a bug, not bad input. Logged with the correlation id; no internals leak.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = err as { status?: number; statusCode?: number; type?: string; message?: string };
    const status = e.status ?? e.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      sendProblem(res, { status, title: 'Bad Request', detail: e.message ?? 'bad request' });
      return;
    }
    logger.error('unhandled error', { error: err, path: req.path });
    sendProblem(res, {
      status: 500,
      title: 'Internal Server Error',
      detail: `unexpected error; correlation id ${req.correlationId}`,
    });
  });
  return app;
}
