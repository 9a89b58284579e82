import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { logger, withLogContext } from '../log.ts';

declare module 'express-serve-static-core' {
  interface Request {
    correlationId: string;
  }
}

const SANE_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** One correlation id per request (per webhook delivery), carried into every log line and job. */
export function correlation(req: Request, res: Response, next: NextFunction): void {
  const incoming = req.get('x-correlation-id');
  const id = incoming && SANE_ID.test(incoming) ? incoming : randomUUID();
  req.correlationId = id;
  res.setHeader('X-Correlation-Id', id);
  const started = process.hrtime.bigint();
  res.on('finish', () => {
    withLogContext({ correlationId: id }, () =>
      logger.info('http request', {
        method: req.method,
        path: req.path,
        status: res.statusCode,
        ms: Number(process.hrtime.bigint() - started) / 1e6,
      }),
    );
  });
  withLogContext({ correlationId: id }, () => next());
}
