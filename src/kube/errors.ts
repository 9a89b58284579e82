/**
 * Kubernetes errors, typed by cause so a job can tell "try again later"
 * (KubeUnavailableError) from "a person must fix something" (everything else).
 * Each names the step and the object; none carries a token or a kubeconfig.
 */
import { ApiException } from '@kubernetes/client-node';

/** What a failed call was doing, so an error can say which permission or object is missing. */
export interface KubeOperation {
  /** what rollhook was doing, e.g. `patch deployment images` */
  step: string;
  /** the RBAC verb of the request: get, list, watch, patch */
  verb: string;
  /** the RBAC resource with its API group, e.g. `deployments.apps`, `pods` */
  resource: string;
  namespace: string;
  name?: string | undefined;
  /** kubeconfig context, when the target names one */
  context?: string | undefined;
}

function where(op: KubeOperation): string {
  const obj = op.name
    ? `${op.resource} ${op.namespace}/${op.name}`
    : `${op.resource} in namespace ${op.namespace}`;
  return op.context ? `${obj} (context ${op.context})` : obj;
}

/** 403: the credentials lack a verb. Not retryable: RBAC must change. */
export class KubePermissionError extends Error {
  override readonly name = 'KubePermissionError';
  readonly step: string;
  readonly verb: string;
  readonly resource: string;
  readonly namespace: string;
  readonly objectName: string | undefined;
  readonly context: string | undefined;

  constructor(op: KubeOperation, serverMessage: string | undefined) {
    super(
      `${op.step}: forbidden: rollhook needs verb "${op.verb}" on "${op.resource}" in namespace "${op.namespace}"` +
        `${op.context ? ` (context ${op.context})` : ''}; grant it in the Role (k8s/base/rbac.yaml)` +
        `${serverMessage ? `. apiserver: ${serverMessage}` : ''}`,
    );
    this.step = op.step;
    this.verb = op.verb;
    this.resource = op.resource;
    this.namespace = op.namespace;
    this.objectName = op.name;
    this.context = op.context;
  }
}

/** 401: the credentials are not accepted at all (expired or wrong token, bad client cert). */
export class KubeAuthenticationError extends Error {
  override readonly name = 'KubeAuthenticationError';
  readonly step: string;
  readonly context: string | undefined;

  constructor(op: KubeOperation) {
    super(
      `${op.step}: the apiserver rejected rollhook's credentials (401) for ${where(op)}; check the kubeconfig or service account token`,
    );
    this.step = op.step;
    this.context = op.context;
  }
}

/** 404: the Deployment (or its namespace) does not exist. Not retryable: the config or cluster must change. */
export class KubeNotFoundError extends Error {
  override readonly name = 'KubeNotFoundError';
  readonly step: string;
  readonly resource: string;
  readonly namespace: string;
  readonly objectName: string | undefined;
  readonly context: string | undefined;

  constructor(op: KubeOperation, detail?: string) {
    super(`${op.step}: ${where(op)} not found${detail ? `: ${detail}` : ''}`);
    this.step = op.step;
    this.resource = op.resource;
    this.namespace = op.namespace;
    this.objectName = op.name;
    this.context = op.context;
  }
}

/** 5xx, 429, 409 conflicts or network errors that outlived the retries: the job may retry later. */
export class KubeUnavailableError extends Error {
  override readonly name = 'KubeUnavailableError';
  readonly step: string;
  /** last HTTP status, or undefined for a network error */
  readonly status: number | undefined;
  readonly attempts: number;
  readonly context: string | undefined;

  constructor(op: KubeOperation, status: number | undefined, attempts: number, cause: unknown) {
    const what =
      status === undefined
        ? `network error (${describe(cause)})`
        : `HTTP ${status}${serverMessage(cause) ? ` (${serverMessage(cause)})` : ''}`;
    super(`${op.step}: ${where(op)}: ${what} after ${attempts} attempt(s)`, { cause });
    this.step = op.step;
    this.status = status;
    this.attempts = attempts;
    this.context = op.context;
  }
}

/**
 * The request itself is wrong (400, 422, other 4xx), the Deployment is not in a state the
 * step accepts (a container it does not have, a paused rollout to undo), or the kubeconfig
 * cannot be used. Not retryable.
 */
export class KubeRequestError extends Error {
  override readonly name = 'KubeRequestError';
  readonly step: string;
  readonly status: number | undefined;
  readonly context: string | undefined;

  constructor(
    step: string,
    message: string,
    opts: { status?: number; context?: string | undefined; cause?: unknown } = {},
  ) {
    super(`${step}: ${message}`, { cause: opts.cause });
    this.step = step;
    this.status = opts.status;
    this.context = opts.context;
  }
}

export type KubeError =
  | KubePermissionError
  | KubeAuthenticationError
  | KubeNotFoundError
  | KubeUnavailableError
  | KubeRequestError;

/** True when trying the same step again later may succeed (the cluster was busy or unreachable). */
export function isRetryable(err: unknown): boolean {
  return err instanceof KubeUnavailableError;
}

/** HTTP status of a client-node error: ApiException.code, or statusCode on watch errors. */
export function statusOf(err: unknown): number | undefined {
  if (err instanceof ApiException) return typeof err.code === 'number' ? err.code : undefined;
  if (err && typeof err === 'object' && 'statusCode' in err && typeof err.statusCode === 'number')
    return err.statusCode;
  return undefined;
}

/** Whether a failed call is worth repeating at once: conflicts, throttling, server and network errors. */
export function isTransient(err: unknown): boolean {
  const status = statusOf(err);
  if (status === undefined)
    return !(
      err instanceof KubeRequestError ||
      err instanceof KubeNotFoundError ||
      err instanceof KubePermissionError
    );
  return status === 409 || status === 429 || status >= 500;
}

/** The apiserver's own explanation (Status.message), which names the user and the missing rule. */
export function serverMessage(err: unknown): string | undefined {
  if (!(err instanceof ApiException)) return undefined;
  const body: unknown = err.body;
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body.slice(0, 300) || undefined;
    }
  }
  if (
    parsed &&
    typeof parsed === 'object' &&
    'message' in parsed &&
    typeof parsed.message === 'string'
  )
    return parsed.message;
  return undefined;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}

/** Turns a client-node failure into the typed error for its cause; `attempts` counts the tries made. */
export function toKubeError(err: unknown, op: KubeOperation, attempts: number): Error {
  if (
    err instanceof KubePermissionError ||
    err instanceof KubeNotFoundError ||
    err instanceof KubeUnavailableError ||
    err instanceof KubeRequestError ||
    err instanceof KubeAuthenticationError
  ) {
    return err;
  }
  const status = statusOf(err);
  if (status === 403) return new KubePermissionError(op, serverMessage(err));
  if (status === 401) return new KubeAuthenticationError(op);
  if (status === 404) return new KubeNotFoundError(op, serverMessage(err));
  if (status === undefined || isTransient(err))
    return new KubeUnavailableError(op, status, attempts, err);
  return new KubeRequestError(
    op.step,
    `${where(op)}: HTTP ${status}${serverMessage(err) ? `: ${serverMessage(err)}` : ''}`,
    {
      status,
      context: op.context,
      cause: err,
    },
  );
}
