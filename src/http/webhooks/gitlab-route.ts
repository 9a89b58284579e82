import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { Config, Target } from '../../config/schema.ts';
import { logger } from '../../log.ts';
import type { EnqueueResult, Enqueuer } from '../../queue/enqueue.ts';
import { projectMatches } from '../../targets/match.ts';
import { decide } from '../../targets/plan.ts';
import { sendProblem, zodProblem } from '../problem.ts';
import { pipelineEventSchema, TERMINAL_STATUSES, type PipelineEvent } from './pipeline-event.ts';
import { targetsForToken, verifyStandardSignature } from './verify.ts';

export type WebhookResult = 'queued' | 'ignored' | 'unauthorized' | 'invalid' | 'error';

export interface WebhookDeps {
  config: Config;
  enqueuer: Enqueuer;
  /** counts webhooks by result, for metrics */
  observe?: (result: WebhookResult) => void;
}

interface Outcome {
  target: string;
  result: EnqueueResult['result'] | 'skipped';
  jobId?: string;
  reason?: string;
}

/**
 * POST /webhooks/gitlab. Answers within milliseconds: GitLab waits 10 s and disables a
 * hook after repeated failures, so everything well-formed gets a 2xx, with
 * `{"ignored": reason}` when it deploys nothing; 4xx is kept for real misconfiguration.
 */
export function gitlabWebhookRoute(deps: WebhookDeps): Router {
  const { config, enqueuer } = deps;
  const observe = deps.observe ?? (() => undefined);
  const r = Router();

  const requireJson = (req: Request, res: Response, next: NextFunction): void => {
    if (!req.is('application/json')) {
      observe('invalid');
      sendProblem(res, {
        status: 415,
        title: 'Unsupported Media Type',
        detail: `Content-Type must be application/json, got ${req.get('content-type') ?? 'none'}`,
      });
      return;
    }
    next();
  };

  r.post(
    '/webhooks/gitlab',
    requireJson,
    express.raw({ type: () => true, limit: config.server.bodyLimit }),
    async (req: Request, res: Response) => {
      const token = req.get('x-gitlab-token');
      const authorized = token ? targetsForToken(config.targets, token) : [];
      if (authorized.length === 0) {
        observe('unauthorized');
        sendProblem(res, {
          status: 401,
          title: 'Unauthorized',
          detail: token
            ? 'X-Gitlab-Token matches no configured webhook secret'
            : 'X-Gitlab-Token header is missing',
        });
        return;
      }

      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch (err) {
        observe('invalid');
        sendProblem(res, {
          status: 400,
          title: 'Bad Request',
          detail: `body is not valid JSON: ${(err as Error).message}`,
        });
        return;
      }

      const event = req.get('x-gitlab-event');
      if (!event) {
        observe('invalid');
        sendProblem(res, {
          status: 400,
          title: 'Bad Request',
          detail: 'X-Gitlab-Event header is missing',
        });
        return;
      }
      if (event !== 'Pipeline Hook') {
        observe('ignored');
        res.status(200).json({ ignored: `event ${event} does not deploy (only Pipeline Hook)` });
        return;
      }
      const parsed = pipelineEventSchema.safeParse(json);
      if (!parsed.success) {
        observe('invalid');
        sendProblem(res, zodProblem(parsed.error.issues, 'Pipeline Hook payload'));
        return;
      }
      const pipeline = parsed.data;

      const forProject = authorized.filter((t) => projectMatches(t, pipeline.project));
      if (forProject.length === 0) {
        observe('ignored');
        res.status(200).json({
          ignored: `no target for project ${pipeline.project.path_with_namespace} (${pipeline.project.id}) uses this secret`,
        });
        return;
      }
      const signed = checkSignatures(forProject, req, body);
      if (signed.targets.length === 0) {
        observe('unauthorized');
        sendProblem(res, {
          status: 401,
          title: 'Unauthorized',
          detail: `signature check failed: ${signed.reasons.join('; ')}`,
        });
        return;
      }

      try {
        const outcome = await enqueueFor(signed.targets, pipeline, req.correlationId, enqueuer);
        const queued =
          outcome.deploys.some((d) => d.result === 'queued') ||
          outcome.cleanups.some((c) => c.result === 'queued');
        logger.info('pipeline webhook', {
          pipelineId: pipeline.object_attributes.id,
          status: pipeline.object_attributes.status,
          ref: pipeline.object_attributes.ref,
          project: pipeline.project.path_with_namespace,
          idempotencyKey: req.get('idempotency-key'),
          webhookUuid: req.get('x-gitlab-webhook-uuid'),
          deploys: outcome.deploys,
          cleanups: outcome.cleanups,
        });
        observe(queued ? 'queued' : 'ignored');
        const deployed = outcome.deploys.filter((d) => d.result !== 'skipped');
        const body: Record<string, unknown> = {
          deploys: outcome.deploys,
          cleanups: outcome.cleanups,
        };
        if (!deployed.some((d) => d.result === 'queued')) {
          body.ignored = outcome.deploys
            .map(
              (d) =>
                `${d.target}: ${d.result === 'skipped' ? d.reason : `${d.result}${d.reason ? `: ${d.reason}` : ''}`}`,
            )
            .join('; ');
        }
        res.status(queued ? 202 : 200).json(body);
      } catch (err) {
        // Redis is down: a 503 makes GitLab show the failure; nothing was half-accepted.
        observe('error');
        logger.error('could not queue webhook', { error: err });
        sendProblem(res, {
          status: 503,
          title: 'Service Unavailable',
          detail: 'the queue is unavailable; GitLab may retry this delivery',
        });
      }
    },
  );

  // Body parser errors (over the limit, aborted) become problems, never a 500.
  r.use('/webhooks/gitlab', (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const e = err as { type?: string; status?: number; message?: string; limit?: number };
    if (e.type === 'entity.too.large') {
      observe('invalid');
      sendProblem(res, {
        status: 413,
        title: 'Content Too Large',
        detail: `body is over the ${e.limit ?? config.server.bodyLimit} byte limit (server.bodyLimit)`,
      });
      return;
    }
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      observe('invalid');
      sendProblem(res, {
        status: e.status,
        title: 'Bad Request',
        detail: e.message ?? 'bad request',
      });
      return;
    }
    next(err);
  });
  return r;
}

function checkSignatures(
  targets: Target[],
  req: Request,
  body: Buffer,
): { targets: Target[]; reasons: string[] } {
  const ok: Target[] = [];
  const reasons: string[] = [];
  for (const t of targets) {
    if (!t.gitlab.signingSecret) {
      ok.push(t);
      continue;
    }
    const check = verifyStandardSignature(
      t.gitlab.signingSecret,
      {
        id: req.get('webhook-id'),
        timestamp: req.get('webhook-timestamp'),
        signature: req.get('webhook-signature'),
      },
      body,
    );
    if (check.ok) ok.push(t);
    else reasons.push(`${t.name}: ${check.reason}`);
  }
  return { targets: ok, reasons };
}

async function enqueueFor(
  targets: Target[],
  event: PipelineEvent,
  correlationId: string,
  enqueuer: Enqueuer,
): Promise<{ deploys: Outcome[]; cleanups: Outcome[] }> {
  const a = event.object_attributes;
  const facts = { ...a, terminal: TERMINAL_STATUSES.has(a.status) };
  const deploys: Outcome[] = [];
  const cleanups: Outcome[] = [];
  for (const target of targets) {
    const d = decide(target, facts);
    if (d.deploy) {
      const r = await enqueuer.deploy({
        target: target.name,
        sha: a.sha,
        ref: a.ref,
        tag: a.tag,
        pipelineId: a.id,
        trigger: {
          kind: 'webhook',
          user: event.user?.username,
          pipelineUrl: a.url,
          pipelineSource: a.source,
        },
        force: false,
        correlationId,
        requestedAt: new Date().toISOString(),
      });
      deploys.push({ target: target.name, ...r });
    } else {
      deploys.push({ target: target.name, result: 'skipped', reason: d.reason });
    }
    if (d.cleanupCi) {
      const r = await enqueuer.cleanupCi({
        target: target.name,
        pipelineId: a.id,
        sha: a.sha,
        ref: a.ref,
        status: a.status,
        correlationId,
      });
      cleanups.push({ target: target.name, ...r });
    }
  }
  return { deploys, cleanups };
}
