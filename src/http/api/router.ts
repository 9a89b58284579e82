import type { Job } from 'bullmq';
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Config, Target } from '../../config/schema.ts';
import type { GitLabClient } from '../../gitlab/client.ts';
import { logger } from '../../log.ts';
import type { Enqueuer } from '../../queue/enqueue.ts';
import type { Queues } from '../../queue/queues.ts';
import type { ImageRegistry } from '../../registry/index.ts';
import type { TargetState } from '../../targets/state.ts';
import { sendProblem, zodProblem } from '../problem.ts';
import { allowed, principalOf, requireToken, type Action } from './auth.ts';
import { requestDeploy, type Requester } from './manual-deploy.ts';
import { openApiDocument } from './openapi.ts';
import { bodyErrors, handle, jsonBody, methodNotAllowed, sendJson } from './respond.ts';
import { requestRollback } from './rollback-plan.ts';
import {
  deployAccepted,
  deploymentPage,
  deployRequest,
  jobId as jobIdSchema,
  jobView as jobViewSchema,
  pageQuery,
  rollbackAccepted,
  rollbackRequest,
  targetList,
} from './schemas.ts';
import { deploymentView, jobView, targetView } from './views.ts';

export const API_BASE = '/api/v1';

export interface ApiDeps {
  config: Config;
  state: TargetState;
  queues: Pick<Queues, 'deploy' | 'cleanupCi'>;
  enqueuer: Pick<Enqueuer, 'deploy' | 'rollback'>;
  gitlab: Pick<GitLabClient, 'latestSuccessfulPipeline' | 'successfulPipelineForSha'>;
  images: Pick<ImageRegistry, 'digestOf'>;
}

declare module 'express-serve-static-core' {
  interface Locals {
    target?: Target;
  }
}

/** The REST API under /api/v1: read what runs, deploy, roll back, follow jobs. */
export function apiRouter(deps: ApiDeps): Router {
  const { config, state } = deps;
  const byName = new Map(config.targets.map((t) => [t.name, t]));
  const document = JSON.stringify(openApiDocument());
  const r = Router();

  r.get(`${API_BASE}/openapi.json`, (_req, res) => {
    res.status(200).type('application/json').send(document);
  });
  r.all(`${API_BASE}/openapi.json`, methodNotAllowed(['GET']));

  const api = Router();
  api.use(requireToken(config.api.tokens));

  /** 404 for an unknown target, 403 outside the token's scope; the target lands in res.locals. */
  const targetFor = (action: Action) => (req: Request, res: Response, next: NextFunction) => {
    const name = String(req.params.name);
    const target = byName.get(name);
    if (!target) {
      sendProblem(res, {
        status: 404,
        title: 'Not Found',
        detail: `no target named ${name} is configured`,
      });
      return;
    }
    if (!allowed(res, action, target.name)) return;
    res.locals.target = target;
    next();
  };
  const targetOf = (res: Response): Target => {
    const t = res.locals.target;
    if (!t) throw new Error('route mounted without targetFor');
    return t;
  };
  const requester = (req: Request, res: Response): Requester => ({
    // the CLI says who it is, so history can tell a terminal from a script
    kind: /^rollhook-cli\//.test(req.get('user-agent') ?? '') ? 'cli' : 'api',
    user: principalOf(res).name,
    correlationId: req.correlationId,
  });

  api.get(
    '/targets',
    handle(async (_req, res) => {
      const p = principalOf(res);
      if (!p.actions.has('read')) {
        sendProblem(res, {
          status: 403,
          title: 'Forbidden',
          detail: `token ${p.name} may not read (its actions: ${[...p.actions].join(', ')})`,
        });
        return;
      }
      const visible = config.targets.filter((t) => p.may('read', t.name));
      sendJson(res, 200, targetList, {
        items: await Promise.all(visible.map((t) => targetView(t, state))),
      });
    }),
  );
  api.all('/targets', methodNotAllowed(['GET']));

  api.get(
    '/targets/:name/deployments',
    targetFor('read'),
    handle(async (req, res) => {
      const q = pageQuery.safeParse(req.query);
      if (!q.success) {
        sendProblem(res, zodProblem(q.error.issues, 'query'));
        return;
      }
      const { offset, limit } = q.data;
      const page = await state.history(targetOf(res).name, offset, limit);
      sendJson(res, 200, deploymentPage, {
        items: page.items.map(deploymentView),
        total: page.total,
        offset,
        limit,
      });
    }),
  );
  api.post(
    '/targets/:name/deployments',
    targetFor('deploy'),
    jsonBody,
    handle(async (req, res) => {
      if (req.body === undefined) {
        sendProblem(res, {
          status: 400,
          title: 'Bad Request',
          detail: 'a JSON body is required: {"sha": "<full sha>"} or {"ref": "<branch>"}',
        });
        return;
      }
      const body = deployRequest.safeParse(req.body);
      if (!body.success) {
        sendProblem(res, zodProblem(body.error.issues, 'deploy request'));
        return;
      }
      const target = targetOf(res);
      const queued = await requestDeploy(deps, target, body.data, requester(req, res));
      logger.info('manual deploy queued', {
        target: target.name,
        ...queued,
        by: principalOf(res).name,
      });
      res.setHeader('Location', `${API_BASE}/jobs/${encodeURIComponent(queued.jobId)}`);
      sendJson(res, 202, deployAccepted, { ...queued, target: target.name, status: 'queued' });
    }),
  );
  api.all('/targets/:name/deployments', methodNotAllowed(['GET', 'POST']));

  api.post(
    '/targets/:name/rollback',
    targetFor('rollback'),
    jsonBody,
    handle(async (req, res) => {
      const body = rollbackRequest.safeParse(req.body ?? {});
      if (!body.success) {
        sendProblem(res, zodProblem(body.error.issues, 'rollback request'));
        return;
      }
      const target = targetOf(res);
      const queued = await requestRollback(deps, target, body.data, requester(req, res));
      logger.info('rollback queued', { target: target.name, ...queued, by: principalOf(res).name });
      res.setHeader('Location', `${API_BASE}/jobs/${encodeURIComponent(queued.jobId)}`);
      sendJson(res, 202, rollbackAccepted, { ...queued, target: target.name, status: 'queued' });
    }),
  );
  api.all('/targets/:name/rollback', methodNotAllowed(['POST']));

  api.get(
    '/jobs/:id',
    handle(async (req, res) => {
      const id = jobIdSchema.safeParse(req.params.id);
      if (!id.success) {
        sendProblem(
          res,
          zodProblem(
            id.error.issues.map((i) => ({ ...i, path: ['id'] })),
            'job id',
          ),
        );
        return;
      }
      let found: { job: Job; queue: 'deploy' | 'cleanup-ci'; state: string } | undefined;
      for (const [queue, q] of [
        ['deploy', deps.queues.deploy],
        ['cleanup-ci', deps.queues.cleanupCi],
      ] as const) {
        const jobState = await q.getJobState(id.data);
        const job = jobState === 'unknown' ? undefined : await q.getJob(id.data);
        if (job) {
          found = { job, queue, state: jobState };
          break;
        }
      }
      if (!found) {
        sendProblem(res, {
          status: 404,
          title: 'Not Found',
          detail: `no job ${id.data} (finished jobs are kept for 14 days, failed ones 30)`,
        });
        return;
      }
      const view = jobView(found.job, found.queue, found.state);
      if (!allowed(res, 'read', view.target)) return;
      sendJson(res, 200, jobViewSchema, view);
    }),
  );
  api.all('/jobs/:id', methodNotAllowed(['GET']));

  api.use(bodyErrors);
  r.use(API_BASE, api);
  // Anything else under the API base: a problem, not the app's HTML-free 404 without auth.
  r.use(API_BASE, (req: Request, res: Response) => {
    sendProblem(res, {
      status: 404,
      title: 'Not Found',
      detail: `no API route ${req.method} ${req.originalUrl.split('?')[0]}`,
    });
  });
  return r;
}
