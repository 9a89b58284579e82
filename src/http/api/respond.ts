import express, { type NextFunction, type Request, type Response } from 'express';
import type { z } from 'zod';
import {
  GitLabAuthError,
  GitLabRequestError,
  GitLabResponseError,
  GitLabUnavailableError,
} from '../../gitlab/errors.ts';
import { logger } from '../../log.ts';
import {
  RegistryAuthError,
  RegistryPermissionError,
  RegistryRequestError,
  RegistryUnavailableError,
} from '../../registry/index.ts';
import { sendProblem, type Problem } from '../problem.ts';
import { RefusedError } from './refusals.ts';

export const BODY_LIMIT = 64 * 1024;

/**
 * Sends a body that has passed through its response schema: a field the schema does not
 * name is dropped, and a body that breaks the documented contract is a bug found here (500),
 * not by a client.
 */
export function sendJson<S extends z.ZodType>(
  res: Response,
  status: number,
  schema: S,
  body: z.input<S>,
): void {
  res.status(status).json(schema.parse(body));
}

/** Refusals and upstream failures as problems; anything else is a bug (rethrown, so 500). */
export function problemFor(err: unknown): Problem {
  if (err instanceof RefusedError) {
    return {
      status: err.status,
      title: err.status === 409 ? 'Conflict' : 'Unprocessable Content',
      detail: err.message,
      ...(err.jobId ? { jobId: err.jobId } : {}),
    };
  }
  if (err instanceof GitLabUnavailableError || err instanceof RegistryUnavailableError) {
    return { status: 503, title: 'Service Unavailable', detail: `${err.message}; try again later` };
  }
  // rollhook's own credentials or config are wrong: the operator's request was fine.
  if (
    err instanceof GitLabAuthError ||
    err instanceof GitLabRequestError ||
    err instanceof GitLabResponseError
  ) {
    return { status: 502, title: 'Bad Gateway', detail: err.message };
  }
  if (
    err instanceof RegistryAuthError ||
    err instanceof RegistryPermissionError ||
    err instanceof RegistryRequestError
  ) {
    return { status: 502, title: 'Bad Gateway', detail: err.message };
  }
  throw err;
}

/** Wraps an async handler: refusals and upstream errors become problems, bugs go to the app's 500. */
export function handle(fn: (req: Request, res: Response) => Promise<void>) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      await fn(req, res);
    } catch (err) {
      let p: Problem;
      try {
        p = problemFor(err);
      } catch (bug) {
        next(bug);
        return;
      }
      if (p.status >= 500)
        logger.warn('api request failed upstream', { status: p.status, detail: p.detail });
      if (p.status === 503) res.setHeader('Retry-After', '30');
      sendProblem(res, p);
    }
  };
}

const parseJson = express.json({ limit: BODY_LIMIT, strict: true, type: () => true });

/**
 * JSON bodies only: 415 for another content type, 400 for bad JSON, 413 over the limit. A
 * request without a body passes with req.body undefined (the route decides if that is fine).
 */
export function jsonBody(req: Request, res: Response, next: NextFunction): void {
  const length = req.get('content-length');
  const chunked = req.get('transfer-encoding') !== undefined;
  const is = req.is(['application/json', 'application/*+json']);
  // type-is counts `Content-Length: 0` as a body; an empty POST is a POST without one.
  if (is === null || (!chunked && (length === undefined || Number(length) === 0))) {
    req.body = undefined;
    next();
    return;
  }
  if (is === false) {
    sendProblem(res, {
      status: 415,
      title: 'Unsupported Media Type',
      detail: `Content-Type must be application/json, got ${req.get('content-type') ?? 'none'}`,
    });
    return;
  }
  parseJson(req, res, next);
}

/** Body parser failures as problems (they never reach a handler). */
export function bodyErrors(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  const e = err as { type?: unknown; status?: unknown; message?: unknown };
  const status = typeof e.status === 'number' ? e.status : undefined;
  if (e.type === 'entity.too.large') {
    sendProblem(res, {
      status: 413,
      title: 'Content Too Large',
      detail: `the body is over the ${BODY_LIMIT} byte limit`,
    });
  } else if (e.type === 'entity.parse.failed') {
    sendProblem(res, {
      status: 400,
      title: 'Bad Request',
      detail: `the body is not a JSON object: ${String(e.message)}`,
    });
  } else if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') {
    sendProblem(res, { status: 415, title: 'Unsupported Media Type', detail: String(e.message) });
  } else if (status !== undefined && status >= 400 && status < 500) {
    sendProblem(res, {
      status,
      title: 'Bad Request',
      detail: typeof e.message === 'string' ? e.message : 'bad request',
    });
  } else {
    next(err);
  }
}

/** 405 with Allow for a known path asked with another method. */
export function methodNotAllowed(allow: readonly string[]) {
  return (req: Request, res: Response): void => {
    res.setHeader('Allow', allow.join(', '));
    sendProblem(res, {
      status: 405,
      title: 'Method Not Allowed',
      detail: `${req.method} is not allowed here; use ${allow.join(' or ')}`,
    });
  };
}
