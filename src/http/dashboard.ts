import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import {
  Router,
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import type { Config } from '../config/schema.ts';
import { logger } from '../log.ts';
import { bearerFrom, findToken, sameDigest, sha256Hex } from './api/auth.ts';
import { sendProblem } from './problem.ts';

export const DASHBOARD_PATH = '/admin/queues';

/** Where a dashboard login may go: everything, or look only. */
export type DashboardMode = 'admin' | 'viewer';

export interface DashboardLogin {
  who: string;
  mode: DashboardMode;
}

/**
 * Who is logging in: a dashboard user by HTTP basic auth, or an API token (as the basic-auth
 * password with any user name, which a browser can prompt for, or as a bearer token). A token
 * must read every target, since the board shows every job; it administers only with deploy and
 * rollback rights. `dashboard.readOnly` makes everyone a viewer.
 * Returns null when nothing valid was presented, 'forbidden' for a token without that scope.
 */
export function dashboardLogin(
  config: Pick<Config, 'dashboard' | 'api'>,
  authorization: string | undefined,
): DashboardLogin | null | 'forbidden' {
  const viewerOnly = config.dashboard.readOnly;
  let tokenSecret: string | undefined;
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? '');
  if (basic?.[1]) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return null;
    const name = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const digest = sha256Hex(password);
    // Every user's hash is compared, so timing does not tell which names exist.
    let user: Config['dashboard']['users'][number] | undefined;
    for (const u of config.dashboard.users)
      if (sameDigest(digest, u.passwordSha256) && u.name === name && !user) user = u;
    if (user) return { who: user.name, mode: viewerOnly || user.readOnly ? 'viewer' : 'admin' };
    tokenSecret = password;
  } else {
    tokenSecret = bearerFrom(authorization);
  }
  if (!tokenSecret) return null;
  const token = findToken(config.api.tokens, tokenSecret);
  if (!token) return null;
  if (!token.actions.includes('read') || !token.targets.includes('*')) return 'forbidden';
  const admin =
    !viewerOnly && token.actions.includes('deploy') && token.actions.includes('rollback');
  return { who: `token ${token.name}`, mode: admin ? 'admin' : 'viewer' };
}

function board(queues: readonly Queue[], readOnlyMode: boolean): RequestHandler {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: queues.map((q) => {
      const adapter = new BullMQAdapter(q, {
        readOnlyMode,
        allowRetries: !readOnlyMode,
        description: describe(q.name),
      });
      adapter.setFormatter('name', jobTitle);
      adapter.setFormatter('progress', withPercent);
      return adapter;
    }),
    serverAdapter,
    options: { uiConfig: { boardTitle: readOnlyMode ? 'rollhook (read-only)' : 'rollhook' } },
  });
  return serverAdapter.getRouter() as RequestHandler;
}

function describe(queue: string): string {
  return queue === 'deploy'
    ? 'Deploys and rollbacks, one at a time per target'
    : queue === 'cleanup-ci'
      ? 'CI image tag cleanup when a pipeline ends'
      : queue;
}

/** `deploy app 1a2b3c4d`: the board's job list then says what each job is about. */
export function jobTitle(job: unknown): string {
  const j = (job ?? {}) as {
    name?: unknown;
    data?: { target?: unknown; sha?: unknown; toSha?: unknown };
  };
  const name = typeof j.name === 'string' ? j.name : 'job';
  const target = typeof j.data?.target === 'string' ? j.data.target : '';
  const shaRaw = j.data?.sha ?? j.data?.toSha;
  const sha = typeof shaRaw === 'string' ? shaRaw.slice(0, 8) : '';
  return [name, target, sha].filter(Boolean).join(' ');
}

// A deploy's steps in order (DESIGN.md): a step's position is the board's progress bar.
const DEPLOY_STEPS = ['guard', 'resolve', 'report', 'patch', 'watch', 'promote', 'clean', 'finish'];

/**
 * The board draws a progress bar for a number, or an object with a numeric `progress`.
 * Steps report objects like `{step, message, desired, updated}`; this adds `progress` from
 * the replica counts during a rollout, or from the step's place in the deploy.
 */
export function withPercent(progress: unknown): unknown {
  if (!progress || typeof progress !== 'object' || Array.isArray(progress)) return progress;
  const p = progress as Record<string, unknown>;
  if (typeof p.progress === 'number') return p;
  const at = typeof p.step === 'string' ? DEPLOY_STEPS.indexOf(p.step) : -1;
  if (at < 0) return p;
  const base = (at / DEPLOY_STEPS.length) * 100;
  const width = 100 / DEPLOY_STEPS.length;
  const desired = typeof p.desired === 'number' ? p.desired : 0;
  const updated = typeof p.updated === 'number' ? p.updated : 0;
  const within = desired > 0 ? Math.min(1, updated / desired) : 0;
  return { ...p, progress: Math.max(1, Math.round(base + within * width)) };
}

/**
 * The queue dashboard (@bull-board) at /admin/queues: every rollhook queue, its jobs and
 * their progress, behind a login. Viewers get a second, read-only board on the same path
 * (bull-board's read-only mode is per board), so their requests cannot retry or remove jobs
 * even when sent by hand.
 */
export function dashboardRouter(deps: {
  config: Pick<Config, 'dashboard' | 'api'>;
  queues: readonly Queue[];
}): Router {
  const admin = board(deps.queues, false);
  const viewer = board(deps.queues, true);
  const r = Router();
  r.use(DASHBOARD_PATH, (req: Request, res: Response, next: NextFunction) => {
    const login = dashboardLogin(deps.config, req.get('authorization'));
    if (login === 'forbidden') {
      sendProblem(res, {
        status: 403,
        title: 'Forbidden',
        detail:
          'this token may not open the dashboard: it needs the read action on every target ("*")',
      });
      return;
    }
    if (!login) {
      res.setHeader('WWW-Authenticate', 'Basic realm="rollhook dashboard", charset="UTF-8"');
      sendProblem(res, {
        status: 401,
        title: 'Unauthorized',
        detail:
          'log in with a dashboard user (dashboard.users), or with an API token as the password',
      });
      return;
    }
    if (req.method !== 'GET')
      logger.info('dashboard action', {
        who: login.who,
        mode: login.mode,
        method: req.method,
        path: req.path,
      });
    (login.mode === 'admin' ? admin : viewer)(req, res, next);
  });
  return r;
}
