import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { ApiToken } from '../../config/schema.ts';
import { globToRegExp } from '../../targets/match.ts';
import { sendProblem } from '../problem.ts';

export type Action = ApiToken['actions'][number];

/** Who a valid bearer token belongs to, and what it may do where. */
export class Principal {
  readonly name: string;
  readonly actions: ReadonlySet<Action>;
  /** the token's target patterns cover every target name */
  readonly allTargets: boolean;
  private readonly targets: readonly RegExp[];

  constructor(token: ApiToken) {
    this.name = token.name;
    this.actions = new Set(token.actions);
    this.targets = token.targets.map(globToRegExp);
    this.allTargets = token.targets.includes('*');
  }

  may(action: Action, target: string): boolean {
    return this.actions.has(action) && this.targets.some((re) => re.test(target));
  }
}

export function sha256Hex(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Equal sha256 hex digests, compared in constant time (both are 32 bytes, so no length leak). */
export function sameDigest(aHex: string, bHex: string): boolean {
  const a = Buffer.from(aHex, 'hex');
  const b = Buffer.from(bHex, 'hex');
  return a.length === 32 && b.length === 32 && timingSafeEqual(a, b);
}

/** A presented secret against a plain configured one: hashing both first hides their lengths. */
export function sameSecret(presented: string, configured: string): boolean {
  return sameDigest(sha256Hex(presented), sha256Hex(configured));
}

/**
 * The configured token whose hash matches, or null. Every configured hash is compared, match
 * or not, so the time taken says nothing about which token came close.
 */
export function findToken(tokens: readonly ApiToken[], presented: string): ApiToken | null {
  const digest = sha256Hex(presented);
  let found: ApiToken | null = null;
  for (const t of tokens) if (sameDigest(digest, t.sha256) && !found) found = t;
  return found;
}

/** `Authorization: Bearer <token>` -> the token, or undefined (no header, another scheme, empty). */
export function bearerToken(req: Request): string | undefined {
  return bearerFrom(req.get('authorization'));
}

export function bearerFrom(authorization: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
}

declare module 'express-serve-static-core' {
  interface Locals {
    principal?: Principal;
  }
}

/** 401 unless a configured API token is presented; the principal lands in res.locals. */
export function requireToken(tokens: readonly ApiToken[]) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const presented = bearerToken(req);
    const token = presented ? findToken(tokens, presented) : null;
    if (!token) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="rollhook"');
      sendProblem(res, {
        status: 401,
        title: 'Unauthorized',
        detail: presented
          ? 'the bearer token matches no token in api.tokens'
          : req.get('authorization')
            ? 'Authorization must be "Bearer <token>"'
            : 'Authorization header is missing: send "Authorization: Bearer <token>"',
      });
      return;
    }
    res.locals.principal = new Principal(token);
    next();
  };
}

/** The principal set by requireToken (routes are only mounted behind it). */
export function principalOf(res: Response): Principal {
  const p = res.locals.principal;
  if (!p) throw new Error('route mounted without requireToken');
  return p;
}

/** 403 with what is missing, or true. */
export function allowed(res: Response, action: Action, target: string): boolean {
  const p = principalOf(res);
  if (p.may(action, target)) return true;
  sendProblem(res, {
    status: 403,
    title: 'Forbidden',
    detail: p.actions.has(action)
      ? `token ${p.name} may not act on target ${target}`
      : `token ${p.name} may not ${action} (its actions: ${[...p.actions].join(', ')})`,
  });
  return false;
}
