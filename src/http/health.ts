import { Router } from 'express';
import type { Redis } from 'ioredis';

/** /healthz: the process is up. /readyz: Redis answers, so webhooks can be queued. */
export function healthRoutes(redis: Redis): Router {
  const r = Router();
  r.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  r.get('/readyz', async (_req, res) => {
    try {
      const pong = await Promise.race([
        redis.ping(),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('redis ping timed out')), 1000).unref(),
        ),
      ]);
      if (pong !== 'PONG') throw new Error(`redis answered ${pong}`);
      res.json({ status: 'ready', redis: 'ok' });
    } catch (err) {
      res
        .status(503)
        .json({ status: 'not ready', redis: err instanceof Error ? err.message : String(err) });
    }
  });
  return r;
}
