import { z } from 'zod';

/** The API could not be reached, or answered 5xx: trying later may help. */
export class ApiUnavailableError extends Error {
  override readonly name = 'ApiUnavailableError';
  readonly url: string;
  readonly status: number | undefined;

  constructor(url: string, status: number | undefined, detail: string) {
    super(
      `rollhook at ${url} ${status === undefined ? 'cannot be reached' : `answered ${status}`}: ${detail}`,
    );
    this.url = url;
    this.status = status;
  }
}

/** The API refused the request (4xx) with a problem document. */
export class ApiRefusedError extends Error {
  override readonly name = 'ApiRefusedError';
  readonly status: number;
  readonly title: string;
  /** the job a refusal is about (an existing duplicate, the deploy that runs) */
  readonly jobId: string | undefined;

  constructor(status: number, title: string, detail: string, jobId: string | undefined) {
    super(detail);
    this.status = status;
    this.title = title;
    this.jobId = jobId;
  }
}

/** A 2xx whose body is not what the API documents: a version mismatch or a proxy in the way. */
export class ApiResponseError extends Error {
  override readonly name = 'ApiResponseError';
  readonly path: string;

  constructor(path: string, detail: string) {
    super(`unexpected answer from ${path}: ${detail}`);
    this.path = path;
  }
}

// Tolerant readers: only the fields the CLI shows are required, others may come and go.
const step = z.looseObject({
  name: z.string(),
  status: z.string(),
  ms: z.number(),
  detail: z.string().nullish(),
});
export const releaseBody = z.looseObject({
  sha: z.string(),
  ref: z.string(),
  pipelineId: z.number(),
  digest: z.string().nullish(),
  images: z.record(z.string(), z.string()),
  since: z.string(),
  by: z.string(),
  jobId: z.string(),
});
export const deploymentBody = z.looseObject({
  jobId: z.string(),
  kind: z.string(),
  sha: z.string(),
  ref: z.string(),
  pipelineId: z.number(),
  outcome: z.string(),
  reason: z.string().nullish(),
  by: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  steps: z.array(step),
});
export const targetsBody = z.looseObject({
  items: z.array(
    z.looseObject({
      name: z.string(),
      environment: z.looseObject({ name: z.string() }),
      current: releaseBody.nullable(),
      lastDeploy: deploymentBody.nullable(),
    }),
  ),
});
export const historyBody = z.looseObject({
  items: z.array(deploymentBody),
  total: z.number(),
  offset: z.number(),
  limit: z.number(),
});
export const acceptedBody = z.looseObject({
  jobId: z.string(),
  target: z.string(),
  // deploy
  sha: z.string().optional(),
  ref: z.string().optional(),
  pipelineId: z.number().optional(),
  // rollback
  toSha: z.string().optional(),
  toRef: z.string().optional(),
});
export const jobBody = z.looseObject({
  id: z.string(),
  kind: z.string(),
  target: z.string(),
  state: z.string(),
  step: z.string().nullable(),
  progress: z.record(z.string(), z.unknown()).nullable(),
  steps: z.array(step),
  attemptsMade: z.number(),
  attempts: z.number(),
  result: z.looseObject({ outcome: z.string(), reason: z.string().nullish() }).nullable(),
  error: z.string().nullable(),
  sha: z.string().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});
export type TargetsBody = z.infer<typeof targetsBody>;
export type HistoryBody = z.infer<typeof historyBody>;
export type JobBody = z.infer<typeof jobBody>;

const problemBody = z.looseObject({
  title: z.string().optional(),
  detail: z.string().optional(),
  jobId: z.string().optional(),
});

export interface ClientOptions {
  baseUrl: string;
  token: string;
  userAgent: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/** The REST API, as the CLI uses it. The token goes in a header, never in a message. */
export class ApiClient {
  private readonly opts: ClientOptions;

  constructor(opts: ClientOptions) {
    // the API's own address (`…/api/v1`, as the sandbox prints it) works as well as the base
    this.opts = { ...opts, baseUrl: opts.baseUrl.replace(/\/+$/, '').replace(/\/api\/v1$/, '') };
  }

  get baseUrl(): string {
    return this.opts.baseUrl;
  }

  async call<S extends z.ZodType>(
    method: 'GET' | 'POST',
    path: string,
    schema: S,
    body?: unknown,
  ): Promise<z.infer<S>> {
    const url = `${this.opts.baseUrl}${path}`;
    let res: Response;
    try {
      res = await (this.opts.fetch ?? fetch)(url, {
        method,
        headers: {
          authorization: `Bearer ${this.opts.token}`,
          accept: 'application/json, application/problem+json',
          'user-agent': this.opts.userAgent,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw new ApiUnavailableError(this.opts.baseUrl, undefined, networkReason(err));
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.status >= 500) {
      const p = problemBody.safeParse(json);
      throw new ApiUnavailableError(
        this.opts.baseUrl,
        res.status,
        (p.success ? p.data.detail : undefined) ?? (text.slice(0, 200) || res.statusText),
      );
    }
    if (res.status >= 400) {
      const p = problemBody.safeParse(json);
      const detail = p.success ? p.data.detail : undefined;
      throw new ApiRefusedError(
        res.status,
        (p.success ? p.data.title : undefined) ?? res.statusText,
        detail ?? `${res.status} ${text.slice(0, 200)}`,
        p.success ? p.data.jobId : undefined,
      );
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success)
      throw new ApiResponseError(
        path,
        parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      );
    return parsed.data;
  }
}

/** `ECONNREFUSED`, `timed out`, …: the innermost reason fetch gives. */
function networkReason(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))
    return 'timed out';
  let cur: unknown = err;
  let reason = err instanceof Error ? err.message : String(err);
  for (let depth = 0; depth < 5 && cur instanceof Error; depth += 1) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    if (cur.message) reason = cur.message;
    cur = cur instanceof AggregateError ? cur.errors[0] : cur.cause;
  }
  return reason;
}
