import type { Server } from 'node:http';
import express, { Router, type Request, type Response } from 'express';
import type { Config } from '../config/schema.ts';
import { logger, registerSecret } from '../log.ts';
import type { RollhookMetrics } from '../metrics/metrics.ts';
import { bearerToken, sameSecret } from './api/auth.ts';
import { sendProblem } from './problem.ts';

/** GET /metrics in the Prometheus text format; behind a bearer token when metrics.token is set. */
export function metricsRoute(metrics: RollhookMetrics, config: Pick<Config, 'metrics'>): Router {
  const token = config.metrics.token;
  registerSecret(token);
  const r = Router();
  r.get('/metrics', async (req: Request, res: Response) => {
    if (token !== undefined) {
      const presented = bearerToken(req);
      if (!presented || !sameSecret(presented, token)) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="rollhook metrics"');
        sendProblem(res, {
          status: 401,
          title: 'Unauthorized',
          detail: presented
            ? 'the bearer token is not metrics.token'
            : 'metrics.token is set: send "Authorization: Bearer <metrics.token>"',
        });
        return;
      }
    }
    try {
      const { contentType, body } = await metrics.expose();
      res.status(200).type(contentType).send(body);
    } catch (err) {
      logger.error('metrics: exposition failed', { error: err });
      sendProblem(res, {
        status: 500,
        title: 'Internal Server Error',
        detail: 'metrics could not be collected; see the log',
      });
    }
  });
  return r;
}

/**
 * The worker role's own HTTP listener: /metrics (its deploys, steps and registry calls
 * happen in this process, so only it can count them) and /healthz. Role api and all serve
 * /metrics on the main server instead.
 */
export async function startMetricsServer(
  metrics: RollhookMetrics,
  config: Pick<Config, 'metrics' | 'server'>,
): Promise<Server> {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.use(metricsRoute(metrics, config));
  app.use((req: Request, res: Response) => {
    sendProblem(res, {
      status: 404,
      title: 'Not Found',
      detail: `no route for ${req.method} ${req.path} (this is the worker's metrics listener)`,
    });
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.metrics.port, config.server.host, () => resolve(s));
    s.once('error', reject);
  });
  const addr = server.address();
  logger.info('metrics listening', {
    port: typeof addr === 'object' && addr ? addr.port : config.metrics.port,
  });
  return server;
}
