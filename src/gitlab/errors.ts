/**
 * GitLab errors, typed by cause: a caller must tell "GitLab is down, try later"
 * (GitLabUnavailableError) from "GitLab refused this request" (GitLabRequestError) from
 * "rollhook's token is wrong or lacks a role" (GitLabAuthError).
 *
 * None carries the token, a request object or response headers: gitbeaker's own error keeps
 * the fetch Request, whose headers hold PRIVATE-TOKEN, so it is never kept as a cause.
 */
import { GitbeakerRequestError, GitbeakerRetryError, GitbeakerTimeoutError } from '@gitbeaker/rest';

/** What a failed call was doing, named in every error message. */
export interface GitLabOperation {
  /** e.g. `createDeployment` */
  operation: string;
  /** project id or path, as configured */
  project: string | number;
}

function where(op: GitLabOperation): string {
  return `GitLab ${op.operation} (project ${op.project})`;
}

/** Network error, timeout, 5xx or 429: nothing is wrong with the request; try again later. */
export class GitLabUnavailableError extends Error {
  override readonly name = 'GitLabUnavailableError';
  readonly operation: string;
  readonly project: string | number;
  /** last HTTP status; undefined for a network error or timeout */
  readonly status: number | undefined;
  readonly retryable = true;

  constructor(op: GitLabOperation, status: number | undefined, detail: string) {
    super(`${where(op)}: GitLab unavailable: ${detail}`);
    this.operation = op.operation;
    this.project = op.project;
    this.status = status;
  }
}

/** 401 or 403: the token is not accepted, or its user lacks the role for this call. */
export class GitLabAuthError extends Error {
  override readonly name = 'GitLabAuthError';
  readonly operation: string;
  readonly project: string | number;
  readonly status: 401 | 403;
  /** GitLab's own message, e.g. `403 Forbidden` */
  readonly gitlabMessage: string;
  readonly retryable = false;

  constructor(op: GitLabOperation, status: 401 | 403, gitlabMessage: string) {
    const hint =
      status === 401
        ? 'the configured gitlab.token is not accepted (expired, revoked or wrong)'
        : 'the token lacks the api scope, or its user lacks the role for this call (at least Developer; more where the branch or environment is protected)';
    super(`${where(op)}: ${status} ${gitlabMessage}: ${hint}`);
    this.operation = op.operation;
    this.project = op.project;
    this.status = status;
    this.gitlabMessage = gitlabMessage;
  }
}

/** Any other 4xx: GitLab refused the request itself (a ref that does not exist, a bad value). */
export class GitLabRequestError extends Error {
  override readonly name = 'GitLabRequestError';
  readonly operation: string;
  readonly project: string | number;
  readonly status: number;
  /** GitLab's own message: `error` or `message` of its JSON body, objects as JSON */
  readonly gitlabMessage: string;
  readonly retryable = false;

  constructor(op: GitLabOperation, status: number, gitlabMessage: string) {
    super(`${where(op)}: ${status} ${gitlabMessage}`);
    this.operation = op.operation;
    this.project = op.project;
    this.status = status;
    this.gitlabMessage = gitlabMessage;
  }
}

/** GitLab answered 2xx with a body that is not what its API documents. */
export class GitLabResponseError extends Error {
  override readonly name = 'GitLabResponseError';
  readonly operation: string;
  readonly project: string | number;
  readonly retryable = false;

  constructor(op: GitLabOperation, detail: string) {
    super(`${where(op)}: unexpected response: ${detail}`);
    this.operation = op.operation;
    this.project = op.project;
  }
}

export type GitLabError =
  GitLabUnavailableError | GitLabAuthError | GitLabRequestError | GitLabResponseError;

export function isGitLabError(err: unknown): err is GitLabError {
  return (
    err instanceof GitLabUnavailableError ||
    err instanceof GitLabAuthError ||
    err instanceof GitLabRequestError ||
    err instanceof GitLabResponseError
  );
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** The code of a fetch failure (`TypeError: fetch failed` with the socket error as cause). */
function networkCode(err: unknown): string | undefined {
  let cur: unknown = err;
  for (let depth = 0; depth < 4 && cur instanceof Error; depth += 1) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    cur = cur.cause;
  }
  return undefined;
}

function scrub(text: string, secret: string | undefined): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  const short = oneLine.length > 500 ? `${oneLine.slice(0, 500)}…` : oneLine;
  return secret && secret.length > 0 ? short.split(secret).join('[redacted]') : short;
}

/**
 * Turns whatever gitbeaker or fetch threw into one of the errors above. Errors that are not
 * about talking to GitLab (a bug here) are returned unchanged.
 */
export function toGitLabError(err: unknown, op: GitLabOperation, token?: string): unknown {
  if (isGitLabError(err)) return err;
  if (err instanceof GitbeakerRequestError) {
    const status = err.cause?.response.status;
    const message = scrub(err.cause?.description || err.message || 'no message', token);
    if (status === undefined) return new GitLabUnavailableError(op, undefined, message);
    if (status === 401 || status === 403) return new GitLabAuthError(op, status, message);
    if (status === 429 || status >= 500)
      return new GitLabUnavailableError(op, status, `${status} ${message}`);
    return new GitLabRequestError(op, status, message);
  }
  if (err instanceof GitbeakerRetryError) {
    // gitbeaker gave up on 429/502 after its own quick retries; its message names the status
    const status = Number(/last status code: (\d{3})/.exec(err.message)?.[1]) || undefined;
    return new GitLabUnavailableError(op, status, scrub(err.message, token));
  }
  if (err instanceof GitbeakerTimeoutError) {
    return new GitLabUnavailableError(op, undefined, 'timed out');
  }
  const code = networkCode(err);
  if (code !== undefined || (err instanceof TypeError && err.message === 'fetch failed')) {
    return new GitLabUnavailableError(op, undefined, `network error (${code ?? 'fetch failed'})`);
  }
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) {
    return new GitLabUnavailableError(op, undefined, 'timed out');
  }
  return err;
}
