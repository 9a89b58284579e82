/**
 * A GitLab contract server: the part of GitLab's REST API v4 that rollhook calls, checked
 * the way GitLab checks it, so a test that passes here would pass against GitLab.
 *
 * GitLab cannot run on this machine. This server follows GitLab's source (lib/api/deployments.rb,
 * lib/api/environments.rb, lib/api/commit_statuses.rb, lib/api/ci/pipelines.rb,
 * app/services/ci/create_commit_status_service.rb, app/models/deployment.rb and the Grape
 * parameter rules) for what it accepts, what it rejects and with which body. Where GitLab does
 * something rollhook depends on (a commit status adds a job to a pipeline and fires a Pipeline
 * Hook; a deployment fires a Deployment Hook) it records that event too, so a test can show
 * that rollhook's own calls never start another deploy.
 *
 * Node's http only. Listens on 127.0.0.1, on a free port unless one is given.
 * Runnable for the sandbox: `node test/support/gitlab-contract.ts contract.json` prints its URL.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';

// ---------------------------------------------------------------------------------------------
// Public types

export type PipelineStatus =
  | 'created'
  | 'waiting_for_resource'
  | 'preparing'
  | 'waiting_for_callback'
  | 'pending'
  | 'running'
  | 'success'
  | 'failed'
  | 'canceling'
  | 'canceled'
  | 'skipped'
  | 'manual'
  | 'scheduled';

export interface ContractPipelineInput {
  /** defaults to the next free id */
  id?: number;
  sha: string;
  ref: string;
  status: PipelineStatus;
  source: string;
  tag?: boolean;
}

export interface ContractDeploymentInput {
  environment: string;
  sha: string;
  ref: string;
  status: 'created' | 'running' | 'success' | 'failed' | 'canceled';
  /** a deployment made by a CI job: GitLab refuses to update it through the API (403) */
  fromCiJob?: boolean;
}

export interface ContractProjectInput {
  id: number;
  path_with_namespace: string;
  /** branches; the first is the default branch */
  refs: string[];
  /** tags, for deployments with `tag: true` */
  tags?: string[];
  /** commits known to the repository and the branches that contain them (pipelines add theirs) */
  commits?: { sha: string; refs: string[] }[];
  pipelines?: ContractPipelineInput[];
  environments?: { name: string; tier?: EnvironmentTier; external_url?: string }[];
  deployments?: ContractDeploymentInput[];
}

export interface ContractOptions {
  /** the token with write access (a Maintainer's api token) */
  token: string;
  /** a token that may read but not write: writes answer 403, as for a Reporter */
  readOnlyToken?: string;
  projects: ContractProjectInput[];
  port?: number;
  /** when set, recorded hook events are also POSTed here, as GitLab would deliver them */
  webhook?: { url: string; token?: string };
}

export interface Call {
  seq: number;
  method: string;
  /** the path as sent (still percent-encoded) */
  path: string;
  query: Record<string, string>;
  /** request headers; credentials replaced by `[redacted]` */
  headers: Record<string, string>;
  body: unknown;
  status: number;
  response: unknown;
  /** answered by failNext, not by the API */
  injected: boolean;
}

export interface HookEvent {
  seq: number;
  /** the X-Gitlab-Event header GitLab would send */
  event: 'Pipeline Hook' | 'Deployment Hook';
  projectId: number;
  payload: Record<string, unknown>;
  /** the API call that caused it (`seed` for addPipeline) */
  cause: string;
  /**
   * The X-Gitlab-Event-UUID the causing request carried. GitLab treats hooks caused by a
   * request that forwards this header as recursive and eventually blocks them.
   */
  recursiveOf: string | undefined;
  delivery?: { status: number } | { error: string };
}

export interface GitLabContract {
  url: string;
  calls(): Call[];
  hooks(): HookEvent[];
  /** clears calls, hooks and pending failures, and restores the projects as configured */
  reset(): void;
  /**
   * The next `times` requests matching method and path answer `status` instead (0: the
   * connection is dropped). A string pattern matches the whole path; `*` stands for one
   * segment, `**` for any run of characters.
   */
  failNext(method: string, pathPattern: string | RegExp, status: number, times?: number): void;
  /** a pipeline as CI would create it; records its Pipeline Hook */
  addPipeline(project: number | string, pipeline: ContractPipelineInput): PipelineView;
  pipelines(project: number | string): PipelineView[];
  deployments(project: number | string): DeploymentView[];
  environments(project: number | string): EnvironmentView[];
  commitStatuses(project: number | string): CommitStatusView[];
  stop(): Promise<void>;
}

export type EnvironmentTier = 'production' | 'staging' | 'testing' | 'development' | 'other';

export interface PipelineView {
  id: number;
  iid: number;
  sha: string;
  ref: string;
  status: PipelineStatus;
  source: string;
}
export interface DeploymentView {
  id: number;
  iid: number;
  environment: string;
  sha: string;
  ref: string;
  tag: boolean;
  status: string;
}
export interface EnvironmentView {
  id: number;
  name: string;
  tier: EnvironmentTier;
  external_url: string | null;
}
export interface CommitStatusView {
  id: number;
  pipelineId: number;
  sha: string;
  ref: string;
  name: string;
  status: string;
  targetUrl: string | null;
  description: string | null;
  retried: boolean;
}

// ---------------------------------------------------------------------------------------------
// GitLab's vocabularies

const PIPELINE_STATUSES: readonly PipelineStatus[] = [
  'created',
  'waiting_for_resource',
  'preparing',
  'waiting_for_callback',
  'pending',
  'running',
  'success',
  'failed',
  'canceling',
  'canceled',
  'skipped',
  'manual',
  'scheduled',
];
const PIPELINE_SOURCES = [
  'unknown',
  'push',
  'web',
  'trigger',
  'schedule',
  'api',
  'external',
  'pipeline',
  'chat',
  'webide',
  'merge_request_event',
  'external_pull_request_event',
  'parent_pipeline',
  'ondemand_dast_scan',
  'ondemand_dast_validation',
  'security_orchestration_policy',
  'container_registry_push',
  'duo_workflow',
  'pipeline_execution_policy_schedule',
];
const PIPELINE_ORDER_BY = ['id', 'status', 'ref', 'updated_at', 'user_id'];
const PIPELINE_SCOPES = ['running', 'pending', 'finished', 'branches', 'tags'];
const DEPLOYMENT_STATUSES = [
  'created',
  'running',
  'success',
  'failed',
  'canceled',
  'skipped',
  'blocked',
];
const DEPLOYMENT_WRITE_STATUSES = ['running', 'success', 'failed', 'canceled'];
const DEPLOYMENT_ORDER_BY = ['id', 'iid', 'created_at', 'updated_at', 'ref', 'finished_at'];
const TIERS: readonly EnvironmentTier[] = [
  'production',
  'staging',
  'testing',
  'development',
  'other',
];
const COMMIT_STATES = ['pending', 'running', 'success', 'failed', 'canceled', 'skipped'];
const ENV_STATES = ['available', 'stopping', 'stopped'];

/** Environment#guess_tier: the tier GitLab gives an environment created by a deployment. */
function guessTier(name: string): EnvironmentTier {
  if (/(dev|review|trunk)/i.test(name)) return 'development';
  if (/(test|tst|int|ac(ce|)pt|qa|qc|control|quality)/i.test(name)) return 'testing';
  if (/(st(a|)g|mod(e|)l|pre|demo|non)/i.test(name)) return 'staging';
  if (/(pr(o|)d|live)/i.test(name)) return 'production';
  return 'other';
}

const ENV_NAME = /^[a-zA-Z0-9 _/${}.-]+$/;

function slugify(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return (/^[a-z]/.test(s) ? s : `env-${s}`).slice(0, 24);
}

// ---------------------------------------------------------------------------------------------
// State

interface Job {
  id: number;
  name: string;
  stage: string;
  status: PipelineStatus;
  ref: string;
  external: boolean;
  retried: boolean;
  targetUrl: string | null;
  description: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

interface Pipeline {
  id: number;
  iid: number;
  sha: string;
  ref: string;
  tag: boolean;
  source: string;
  status: PipelineStatus;
  jobs: Job[];
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

interface Environment {
  id: number;
  name: string;
  slug: string;
  tier: EnvironmentTier;
  externalUrl: string | null;
  createdAt: Date;
  updatedAt: Date;
}

interface Deployment {
  id: number;
  iid: number;
  environmentId: number;
  sha: string;
  ref: string;
  tag: boolean;
  status: string;
  fromCiJob: boolean;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

interface Project {
  id: number;
  path: string;
  branches: string[];
  tags: string[];
  /** sha -> branches containing it, in insertion order */
  commits: Map<string, string[]>;
  pipelines: Pipeline[];
  environments: Environment[];
  deployments: Deployment[];
}

const USER = {
  id: 1,
  name: 'rollhook',
  username: 'rollhook-bot',
  state: 'active',
  avatar_url: null,
  web_url: 'http://gitlab.example.com/rollhook-bot',
};

class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, body: unknown) {
    super(`${status} ${JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
  }
}

const notFound = (what: string): HttpError =>
  new HttpError(404, { message: `404 ${what} Not Found` });
const badParams = (errors: string[]): HttpError => new HttpError(400, { error: errors.join(', ') });
const validation = (field: string, message: string): HttpError =>
  new HttpError(400, { message: { [field]: [message] } });

// ---------------------------------------------------------------------------------------------
// Grape-like parameter checks: GitLab answers 400 {"error": "x is missing, y is invalid"}

type Params = Record<string, unknown>;

class ParamCheck {
  readonly errors: string[] = [];
  readonly params: Params;
  constructor(params: Params) {
    this.params = params;
  }

  private present(key: string): boolean {
    return this.params[key] !== undefined && this.params[key] !== null;
  }

  requireString(
    key: string,
    opts: { values?: readonly string[]; allowBlank?: boolean } = {},
  ): string | undefined {
    if (!this.present(key)) {
      this.errors.push(`${key} is missing`);
      return undefined;
    }
    return this.checkString(key, opts);
  }

  optionalString(key: string, opts: { values?: readonly string[] } = {}): string | undefined {
    return this.present(key) ? this.checkString(key, { ...opts, allowBlank: true }) : undefined;
  }

  private checkString(
    key: string,
    opts: { values?: readonly string[]; allowBlank?: boolean },
  ): string | undefined {
    const v = this.params[key];
    if (typeof v !== 'string' && typeof v !== 'number') {
      this.errors.push(`${key} is invalid`);
      return undefined;
    }
    const s = String(v);
    if (opts.allowBlank === false && s.trim() === '') {
      this.errors.push(`${key} is empty`);
      return undefined;
    }
    if (opts.values && !opts.values.includes(s)) {
      this.errors.push(`${key} does not have a valid value`);
      return undefined;
    }
    return s;
  }

  requireBoolean(key: string): boolean | undefined {
    if (!this.present(key)) {
      this.errors.push(`${key} is missing`);
      return undefined;
    }
    const b = toBoolean(this.params[key]);
    if (b === undefined) this.errors.push(`${key} is invalid`);
    return b;
  }

  optionalInteger(key: string, opts: { min?: number } = {}): number | undefined {
    if (!this.present(key)) return undefined;
    const n = toInteger(this.params[key]);
    if (n === undefined || (opts.min !== undefined && n < opts.min)) {
      this.errors.push(`${key} is invalid`);
      return undefined;
    }
    return n;
  }

  optionalFloat(key: string): number | undefined {
    if (!this.present(key)) return undefined;
    const v = this.params[key];
    const n =
      typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
    if (!Number.isFinite(n)) {
      this.errors.push(`${key} is invalid`);
      return undefined;
    }
    return n;
  }

  mutuallyExclusive(a: string, b: string, message: string): void {
    if (this.present(a) && this.present(b)) this.errors.push(`${a}, ${b} ${message}`);
  }

  /** throws GitLab's 400 when any check failed */
  done(): void {
    if (this.errors.length > 0) throw badParams(this.errors);
  }
}

function toBoolean(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (v === 1 || v === 0) return v === 1;
  if (typeof v !== 'string') return undefined;
  const s = v.toLowerCase();
  if (['1', 'on', 't', 'true', 'y', 'yes'].includes(s)) return true;
  if (['0', 'off', 'f', 'false', 'n', 'no'].includes(s)) return false;
  return undefined;
}

function toInteger(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return Number(v.trim());
  return undefined;
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** Path segments, each percent-decoded on its own so `group%2Fapp` stays one segment. */
function pathSegments(pathname: string): string[] {
  const parts = pathname.split('/').slice(1);
  if (parts[parts.length - 1] === '') parts.pop();
  try {
    return parts.map((x) => decodeURIComponent(x));
  } catch {
    throw new HttpError(400, { error: '400 Bad request - malformed path' });
  }
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);
/** Hook payloads use this format, not ISO 8601. */
const hookDate = (d: Date | null): string | null =>
  d ? `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC` : null;

const DETAILED_STATUS: Record<string, string> = {
  success: 'passed',
  failed: 'failed',
  running: 'running',
  pending: 'pending',
  canceled: 'canceled',
  canceling: 'canceling',
  skipped: 'skipped',
  created: 'created',
  manual: 'manual action',
  scheduled: 'delayed',
  preparing: 'preparing',
  waiting_for_resource: 'waiting for resource',
  waiting_for_callback: 'waiting for callback',
};

const TERMINAL: readonly PipelineStatus[] = ['success', 'failed', 'canceled', 'skipped'];

/**
 * Gitlab::Ci::Status::Composite, reduced to the statuses this server produces: what a
 * pipeline's status is, given its latest jobs.
 */
function compositeStatus(statuses: PipelineStatus[]): PipelineStatus {
  const only = (...allowed: PipelineStatus[]): boolean =>
    statuses.every((s) => allowed.includes(s));
  const any = (...wanted: PipelineStatus[]): boolean => statuses.some((s) => wanted.includes(s));
  if (statuses.length === 0 || only('skipped')) return 'skipped';
  if (only('success', 'skipped')) return 'success';
  if (only('created')) return 'created';
  if (only('preparing')) return 'preparing';
  if (only('canceled', 'success', 'skipped')) return 'canceled';
  if (only('pending', 'created', 'skipped')) return 'pending';
  if (any('running', 'pending')) return 'running';
  if (any('waiting_for_resource')) return 'waiting_for_resource';
  if (any('waiting_for_callback')) return 'waiting_for_callback';
  if (any('manual')) return 'manual';
  if (any('scheduled')) return 'scheduled';
  if (any('preparing')) return 'preparing';
  if (any('created')) return 'running';
  if (any('canceling')) return 'canceling';
  return 'failed';
}

// ---------------------------------------------------------------------------------------------
// The server

export async function startGitLabContract(options: ContractOptions): Promise<GitLabContract> {
  let projects = new Map<number, Project>();
  let callLog: Call[] = [];
  let hookLog: HookEvent[] = [];
  let failures: { method: string; pattern: RegExp; status: number; remaining: number }[] = [];
  let seq = 0;
  let hookSeq = 0;
  let nextId = 1000;
  const newId = (): number => ++nextId;
  let baseUrl = '';

  function init(): void {
    projects = new Map();
    nextId = 1000;
    for (const p of options.projects) {
      if (p.refs.length === 0)
        throw new Error(`project ${p.id}: give at least one ref (the default branch)`);
      const project: Project = {
        id: p.id,
        path: p.path_with_namespace,
        branches: [...p.refs],
        tags: [...(p.tags ?? [])],
        commits: new Map(),
        pipelines: [],
        environments: [],
        deployments: [],
      };
      projects.set(p.id, project);
      for (const c of p.commits ?? []) addCommit(project, c.sha, c.refs);
      for (const e of p.environments ?? []) {
        createEnvironment(project, e.name, e.tier ?? guessTier(e.name), e.external_url ?? null);
      }
      for (const pl of p.pipelines ?? []) insertPipeline(project, pl);
      for (const d of p.deployments ?? []) {
        const env = findOrCreateEnvironment(project, d.environment);
        const now = new Date();
        project.deployments.push({
          id: newId(),
          iid: project.deployments.length + 1,
          environmentId: env.id,
          sha: d.sha,
          ref: d.ref,
          tag: false,
          status: d.status,
          fromCiJob: d.fromCiJob ?? false,
          createdAt: now,
          updatedAt: now,
          finishedAt: ['success', 'failed', 'canceled'].includes(d.status) ? now : null,
        });
      }
    }
  }

  function addCommit(project: Project, sha: string, refs: string[]): void {
    const known = project.commits.get(sha) ?? [];
    for (const r of refs) if (!known.includes(r)) known.push(r);
    project.commits.set(sha, known);
  }

  function insertPipeline(project: Project, input: ContractPipelineInput): Pipeline {
    if (!PIPELINE_STATUSES.includes(input.status))
      throw new Error(`pipeline status ${input.status} is not one of GitLab's`);
    if (!PIPELINE_SOURCES.includes(input.source))
      throw new Error(`pipeline source ${input.source} is not one of GitLab's`);
    const id = input.id ?? newId();
    if (input.id !== undefined && input.id > nextId) nextId = input.id;
    const now = new Date();
    const isTag = input.tag ?? project.tags.includes(input.ref);
    if (!isTag && !input.ref.startsWith('refs/') && !project.branches.includes(input.ref))
      project.branches.push(input.ref);
    if (isTag && !project.tags.includes(input.ref)) project.tags.push(input.ref);
    if (!isTag && !input.ref.startsWith('refs/')) addCommit(project, input.sha, [input.ref]);
    else addCommit(project, input.sha, []);
    const pipeline: Pipeline = {
      id,
      iid: project.pipelines.length + 1,
      sha: input.sha,
      ref: input.ref,
      tag: isTag,
      source: input.source,
      status: input.status,
      // one CI job stands for the pipeline's own jobs, so external statuses combine with it
      jobs: [
        {
          id: newId(),
          name: 'build',
          stage: 'build',
          status: input.status,
          ref: input.ref,
          external: false,
          retried: false,
          targetUrl: null,
          description: null,
          createdAt: now,
          startedAt: now,
          finishedAt: TERMINAL.includes(input.status) ? now : null,
        },
      ],
      createdAt: now,
      updatedAt: now,
      finishedAt: TERMINAL.includes(input.status) ? now : null,
    };
    project.pipelines.push(pipeline);
    return pipeline;
  }

  function createEnvironment(
    project: Project,
    name: string,
    tier: EnvironmentTier,
    externalUrl: string | null,
  ): Environment {
    const now = new Date();
    let slug = slugify(name);
    if (project.environments.some((e) => e.slug === slug))
      slug = `${slug.slice(0, 17)}-${randomUUID().slice(0, 6)}`;
    const env: Environment = {
      id: newId(),
      name,
      slug,
      tier,
      externalUrl,
      createdAt: now,
      updatedAt: now,
    };
    project.environments.push(env);
    return env;
  }

  function validateEnvironmentName(name: string): void {
    if (name.length > 255) throw validation('name', 'is too long (maximum is 255 characters)');
    if (!ENV_NAME.test(name) || name.startsWith('/') || name.endsWith('/')) {
      throw validation(
        'name',
        "can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'",
      );
    }
  }

  function findOrCreateEnvironment(project: Project, name: string): Environment {
    const found = project.environments.find((e) => e.name === name);
    if (found) return found;
    validateEnvironmentName(name);
    return createEnvironment(project, name, guessTier(name), null);
  }

  function lookupProject(raw: string): Project {
    if (/^\d+$/.test(raw)) {
      const p = projects.get(Number(raw));
      if (p) return p;
    } else {
      for (const p of projects.values()) if (p.path.toLowerCase() === raw.toLowerCase()) return p;
    }
    throw notFound('Project');
  }

  function projectByRef(ref: number | string): Project {
    return lookupProject(String(ref));
  }

  // --- hooks

  function projectHookAttrs(project: Project): Record<string, unknown> {
    const name = project.path.split('/').pop() ?? project.path;
    return {
      id: project.id,
      name,
      description: '',
      web_url: `http://gitlab.example.com/${project.path}`,
      avatar_url: null,
      git_ssh_url: `git@gitlab.example.com:${project.path}.git`,
      git_http_url: `http://gitlab.example.com/${project.path}.git`,
      namespace: project.path.split('/')[0],
      visibility_level: 0,
      path_with_namespace: project.path,
      default_branch: project.branches[0],
      ci_config_path: null,
    };
  }

  const userHookAttrs = {
    id: USER.id,
    name: USER.name,
    username: USER.username,
    avatar_url: USER.avatar_url,
    email: '[REDACTED]',
  };

  function recordHook(
    project: Project,
    event: HookEvent['event'],
    payload: Record<string, unknown>,
    cause: string,
    recursiveOf: string | undefined,
  ): void {
    const hook: HookEvent = {
      seq: ++hookSeq,
      event,
      projectId: project.id,
      payload,
      cause,
      recursiveOf,
    };
    hookLog.push(hook);
    if (options.webhook) void deliver(hook, options.webhook, recursiveOf);
  }

  async function deliver(
    hook: HookEvent,
    target: { url: string; token?: string },
    eventUuid: string | undefined,
  ): Promise<void> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'GitLab/18.0.0',
      'x-gitlab-event': hook.event,
      'x-gitlab-instance': 'http://gitlab.example.com',
      'x-gitlab-webhook-uuid': randomUUID(),
      'x-gitlab-event-uuid': eventUuid ?? randomUUID(),
      'idempotency-key': randomUUID(),
    };
    if (target.token) headers['x-gitlab-token'] = target.token;
    try {
      const res = await fetch(target.url, {
        method: 'POST',
        headers,
        body: JSON.stringify(hook.payload),
      });
      await res.arrayBuffer();
      hook.delivery = { status: res.status };
    } catch (err) {
      hook.delivery = { error: err instanceof Error ? err.message : String(err) };
    }
  }

  function pipelineHookPayload(project: Project, p: Pipeline): Record<string, unknown> {
    const latest = p.jobs.filter((j) => !j.retried);
    const stages = [...new Set(latest.map((j) => j.stage))];
    const duration = p.finishedAt
      ? Math.round((p.finishedAt.getTime() - p.createdAt.getTime()) / 1000)
      : null;
    return {
      object_kind: 'pipeline',
      object_attributes: {
        id: p.id,
        iid: p.iid,
        name: null,
        ref: p.ref,
        tag: p.tag,
        sha: p.sha,
        before_sha: '0000000000000000000000000000000000000000',
        source: p.source,
        status: p.status,
        detailed_status: DETAILED_STATUS[p.status] ?? p.status,
        stages,
        created_at: hookDate(p.createdAt),
        finished_at: hookDate(p.finishedAt),
        duration,
        queued_duration: null,
        protected_ref: project.branches[0] === p.ref,
        variables: [],
        url: `http://gitlab.example.com/${project.path}/-/pipelines/${p.id}`,
      },
      merge_request: null,
      user: userHookAttrs,
      project: projectHookAttrs(project),
      commit: {
        id: p.sha,
        message: 'contract commit\n',
        title: 'contract commit',
        timestamp: p.createdAt.toISOString().replace(/\.\d{3}Z$/, '+00:00'),
        url: `http://gitlab.example.com/${project.path}/-/commit/${p.sha}`,
        author: { name: 'Contract', email: 'contract@example.com' },
      },
      builds: latest.map((j) => ({
        id: j.id,
        stage: j.stage,
        name: j.name,
        status: j.status,
        created_at: hookDate(j.createdAt),
        started_at: hookDate(j.startedAt),
        finished_at: hookDate(j.finishedAt),
        duration: null,
        queued_duration: null,
        failure_reason:
          j.status === 'failed' ? (j.external ? 'api_failure' : 'script_failure') : null,
        when: 'on_success',
        manual: false,
        allow_failure: false,
        user: userHookAttrs,
        runner: null,
        artifacts_file: { filename: null, size: null },
        environment: null,
      })),
    };
  }

  function deploymentHookPayload(
    project: Project,
    d: Deployment,
    env: Environment,
  ): Record<string, unknown> {
    const now = new Date();
    return {
      object_kind: 'deployment',
      status: d.status,
      status_changed_at: `${now.toISOString().slice(0, 19).replace('T', ' ')} +0000`,
      deployment_id: d.id,
      // API deployments have no CI job behind them
      deployable_id: null,
      deployable_url: null,
      environment: env.name,
      environment_tier: env.tier,
      environment_slug: env.slug,
      environment_external_url: env.externalUrl,
      project: projectHookAttrs(project),
      short_sha: d.sha.slice(0, 8),
      user: userHookAttrs,
      user_url: USER.web_url,
      commit_url: `http://gitlab.example.com/${project.path}/-/commit/${d.sha}`,
      commit_title: 'contract commit',
      ref: d.ref,
    };
  }

  /** Recomputes a pipeline's status from its jobs; a real change fires a Pipeline Hook. */
  function updatePipelineStatus(
    project: Project,
    p: Pipeline,
    cause: string,
    recursiveOf: string | undefined,
    isNew: boolean,
  ): void {
    const next = compositeStatus(p.jobs.filter((j) => !j.retried).map((j) => j.status));
    if (next === p.status && !isNew) return;
    p.status = next;
    p.updatedAt = new Date();
    p.finishedAt = TERMINAL.includes(next) ? p.updatedAt : null;
    recordHook(project, 'Pipeline Hook', pipelineHookPayload(project, p), cause, recursiveOf);
  }

  // --- entities

  function environmentEntity(project: Project, e: Environment): Record<string, unknown> {
    return {
      id: e.id,
      name: e.name,
      slug: e.slug,
      description: null,
      external_url: e.externalUrl,
      created_at: iso(e.createdAt),
      updated_at: iso(e.updatedAt),
      tier: e.tier,
      state: 'available',
      auto_stop_at: null,
      auto_stop_setting: 'always',
      project: { id: project.id, path_with_namespace: project.path },
    };
  }

  function deploymentEntity(project: Project, d: Deployment): Record<string, unknown> {
    const env = project.environments.find((e) => e.id === d.environmentId);
    return {
      id: d.id,
      iid: d.iid,
      ref: d.ref,
      sha: d.sha,
      created_at: iso(d.createdAt),
      updated_at: iso(d.updatedAt),
      finished_at: iso(d.finishedAt),
      status: d.status,
      user: USER,
      deployable: d.fromCiJob
        ? { id: d.id + 1, status: d.status, stage: 'deploy', name: 'deploy' }
        : null,
      environment: env
        ? {
            id: env.id,
            name: env.name,
            slug: env.slug,
            external_url: env.externalUrl,
            created_at: iso(env.createdAt),
            updated_at: iso(env.updatedAt),
            tier: env.tier,
            state: 'available',
          }
        : null,
    };
  }

  function pipelineEntity(project: Project, p: Pipeline): Record<string, unknown> {
    return {
      id: p.id,
      iid: p.iid,
      project_id: project.id,
      sha: p.sha,
      ref: p.ref,
      status: p.status,
      source: p.source,
      created_at: iso(p.createdAt),
      updated_at: iso(p.updatedAt),
      web_url: `http://gitlab.example.com/${project.path}/-/pipelines/${p.id}`,
      name: null,
    };
  }

  function commitStatusEntity(p: Pipeline, j: Job): Record<string, unknown> {
    return {
      id: j.id,
      sha: p.sha,
      ref: j.ref,
      status: j.status,
      name: j.name,
      target_url: j.targetUrl,
      description: j.description,
      created_at: iso(j.createdAt),
      started_at: iso(j.startedAt),
      finished_at: iso(j.finishedAt),
      allow_failure: false,
      coverage: null,
      pipeline_id: p.id,
      author: USER,
    };
  }

  // --- pagination, as lib/api/helpers/pagination.rb answers it

  interface Page<T> {
    items: T[];
    headers: Record<string, string>;
  }

  function paginate<T>(items: T[], params: Params, reqUrl: URL): Page<T> {
    const check = new ParamCheck(params);
    const page = check.optionalInteger('page') ?? 1;
    const perPageRaw = check.optionalInteger('per_page') ?? 20;
    check.done();
    const perPage = perPageRaw < 1 ? 20 : Math.min(perPageRaw, 100);
    const current = page < 1 ? 1 : page;
    const total = items.length;
    const totalPages = Math.max(1, Math.ceil(total / perPage));
    const slice = items.slice((current - 1) * perPage, current * perPage);
    const link = (n: number): string => {
      const u = new URL(reqUrl.pathname + reqUrl.search, baseUrl);
      u.searchParams.set('page', String(n));
      u.searchParams.set('per_page', String(perPage));
      return u.toString();
    };
    const links: string[] = [];
    if (current > 1) links.push(`<${link(current - 1)}>; rel="prev"`);
    if (current < totalPages) links.push(`<${link(current + 1)}>; rel="next"`);
    links.push(`<${link(1)}>; rel="first"`);
    links.push(`<${link(totalPages)}>; rel="last"`);
    return {
      items: slice,
      headers: {
        'x-page': String(current),
        'x-per-page': String(perPage),
        'x-total': String(total),
        'x-total-pages': String(totalPages),
        'x-next-page': current < totalPages ? String(current + 1) : '',
        'x-prev-page': current > 1 ? String(current - 1) : '',
        link: links.join(', '),
      },
    };
  }

  // --- endpoints

  interface Answer {
    status: number;
    body: unknown;
    headers?: Record<string, string>;
  }

  interface ApiRequest {
    method: string;
    url: URL;
    segments: string[];
    params: Params;
    canWrite: boolean;
    eventUuid: string | undefined;
    cause: string;
  }

  function requireWrite(req: ApiRequest): void {
    if (!req.canWrite) throw new HttpError(403, { message: '403 Forbidden' });
  }

  function getProject(_req: ApiRequest, project: Project): Answer {
    const name = project.path.split('/').pop() ?? project.path;
    return {
      status: 200,
      body: {
        id: project.id,
        name,
        path: name,
        path_with_namespace: project.path,
        name_with_namespace: project.path.split('/').join(' / '),
        default_branch: project.branches[0],
        visibility: 'private',
        web_url: `http://gitlab.example.com/${project.path}`,
        created_at: new Date(0).toISOString(),
      },
    };
  }

  function listPipelines(req: ApiRequest, project: Project): Answer {
    const check = new ParamCheck(req.params);
    const scope = check.optionalString('scope', { values: PIPELINE_SCOPES });
    const status = check.optionalString('status', { values: PIPELINE_STATUSES });
    const source = check.optionalString('source', { values: PIPELINE_SOURCES });
    const ref = check.optionalString('ref');
    const sha = check.optionalString('sha');
    const orderBy = check.optionalString('order_by', { values: PIPELINE_ORDER_BY }) ?? 'id';
    const sort = check.optionalString('sort', { values: ['asc', 'desc'] }) ?? 'desc';
    check.optionalInteger('page');
    check.optionalInteger('per_page');
    check.done();
    let items = project.pipelines.filter(
      (p) =>
        (ref === undefined || p.ref === ref) &&
        (sha === undefined || p.sha === sha) &&
        (status === undefined || p.status === status) &&
        (source === undefined || p.source === source),
    );
    if (scope === 'running' || scope === 'pending') items = items.filter((p) => p.status === scope);
    if (scope === 'finished') items = items.filter((p) => TERMINAL.includes(p.status));
    if (scope === 'branches') items = items.filter((p) => !p.tag);
    if (scope === 'tags') items = items.filter((p) => p.tag);
    const key = (p: Pipeline): string | number =>
      orderBy === 'status'
        ? p.status
        : orderBy === 'ref'
          ? p.ref
          : orderBy === 'updated_at'
            ? p.updatedAt.getTime()
            : p.id;
    items = [...items].sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      const c = ka < kb ? -1 : ka > kb ? 1 : a.id - b.id;
      return sort === 'asc' ? c : -c;
    });
    const page = paginate(items, req.params, req.url);
    return {
      status: 200,
      body: page.items.map((p) => pipelineEntity(project, p)),
      headers: page.headers,
    };
  }

  function getPipeline(req: ApiRequest, project: Project, rawId: string): Answer {
    const id = toInteger(rawId);
    if (id === undefined) throw badParams(['pipeline_id is invalid']);
    const p = project.pipelines.find((x) => x.id === id);
    if (!p) throw new HttpError(404, { message: '404 Not found' });
    // The single pipeline is GitLab's detailed entity: it also says whether the ref is a tag.
    return {
      status: 200,
      body: {
        ...pipelineEntity(project, p),
        tag: p.tag,
        before_sha: '0000000000000000000000000000000000000000',
        yaml_errors: null,
        user: { id: USER.id, name: USER.name, username: USER.username },
        finished_at: p.finishedAt ? iso(p.finishedAt) : null,
        coverage: null,
      },
    };
  }

  function listEnvironments(req: ApiRequest, project: Project): Answer {
    const check = new ParamCheck(req.params);
    const name = check.optionalString('name');
    const search = check.optionalString('search');
    check.optionalString('states', { values: ENV_STATES });
    check.mutuallyExclusive('name', 'search', 'cannot be used together');
    check.done();
    if (search !== undefined && search.length > 0 && search.length < 3) {
      throw new HttpError(400, {
        message: '400 Bad request - Search query is less than 3 characters',
      });
    }
    const items = project.environments
      .filter(
        (e) =>
          (name === undefined || e.name === name) &&
          (search === undefined || e.name.includes(search)),
      )
      .sort((a, b) => a.id - b.id);
    const page = paginate(items, req.params, req.url);
    return {
      status: 200,
      body: page.items.map((e) => environmentEntity(project, e)),
      headers: page.headers,
    };
  }

  function createEnvironmentEndpoint(req: ApiRequest, project: Project): Answer {
    const check = new ParamCheck(req.params);
    const name = check.requireString('name');
    const externalUrl = check.optionalString('external_url');
    const tier = check.optionalString('tier', { values: TIERS });
    if (req.params.slug !== undefined)
      check.errors.push('slug is automatically generated and cannot be changed');
    check.done();
    requireWrite(req);
    if (name === undefined) throw badParams(['name is missing']);
    if (name.trim() === '') throw validation('name', "can't be blank");
    validateEnvironmentName(name);
    if (project.environments.some((e) => e.name === name))
      throw validation('name', 'has already been taken');
    if (externalUrl !== undefined && externalUrl !== '' && !isHttpUrl(externalUrl)) {
      throw validation('external_url', 'is blocked: Only allowed schemes are http, https');
    }
    const env = createEnvironment(
      project,
      name,
      (tier as EnvironmentTier | undefined) ?? guessTier(name),
      externalUrl || null,
    );
    return { status: 201, body: environmentEntity(project, env) };
  }

  function findEnvironment(project: Project, rawId: string): Environment {
    const id = toInteger(rawId);
    if (id === undefined) throw badParams(['environment_id is invalid']);
    const env = project.environments.find((e) => e.id === id);
    if (!env) throw new HttpError(404, { message: '404 Not found' });
    return env;
  }

  function updateEnvironmentEndpoint(req: ApiRequest, project: Project, rawId: string): Answer {
    const check = new ParamCheck(req.params);
    const name = check.optionalString('name');
    const externalUrl = check.optionalString('external_url');
    const tier = check.optionalString('tier', { values: TIERS });
    if (req.params.slug !== undefined)
      check.errors.push('slug is automatically generated and cannot be changed');
    check.done();
    requireWrite(req);
    const env = findEnvironment(project, rawId);
    if (name !== undefined && name !== env.name) {
      validateEnvironmentName(name);
      if (project.environments.some((e) => e.name === name))
        throw validation('name', 'has already been taken');
    }
    if (externalUrl !== undefined && externalUrl !== '' && !isHttpUrl(externalUrl)) {
      throw validation('external_url', 'is blocked: Only allowed schemes are http, https');
    }
    if (name !== undefined) env.name = name;
    if (externalUrl !== undefined) env.externalUrl = externalUrl || null;
    if (tier !== undefined) env.tier = tier as EnvironmentTier;
    env.updatedAt = new Date();
    return { status: 200, body: environmentEntity(project, env) };
  }

  function listDeployments(req: ApiRequest, project: Project): Answer {
    const check = new ParamCheck(req.params);
    const orderBy = check.optionalString('order_by', { values: DEPLOYMENT_ORDER_BY }) ?? 'id';
    const sort = check.optionalString('sort', { values: ['asc', 'desc'] }) ?? 'asc';
    const environment = check.optionalString('environment');
    const status = check.optionalString('status', { values: DEPLOYMENT_STATUSES });
    check.done();
    if (orderBy === 'finished_at' && status !== 'success') {
      throw new HttpError(400, {
        message:
          '400 Bad request - `finished_at` filter must be combined with `success` status filter.',
      });
    }
    const env =
      environment === undefined
        ? undefined
        : project.environments.find((e) => e.name === environment);
    let items = project.deployments.filter(
      (d) =>
        (environment === undefined || (env !== undefined && d.environmentId === env.id)) &&
        (status === undefined || d.status === status),
    );
    const key = (d: Deployment): string | number =>
      orderBy === 'ref'
        ? d.ref
        : orderBy === 'updated_at'
          ? d.updatedAt.getTime()
          : orderBy === 'finished_at'
            ? (d.finishedAt?.getTime() ?? 0)
            : d.id;
    items = [...items].sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      const c = ka < kb ? -1 : ka > kb ? 1 : a.id - b.id;
      return sort === 'asc' ? c : -c;
    });
    const page = paginate(items, req.params, req.url);
    return {
      status: 200,
      body: page.items.map((d) => deploymentEntity(project, d)),
      headers: page.headers,
    };
  }

  function findDeployment(project: Project, rawId: string): Deployment {
    const id = toInteger(rawId);
    if (id === undefined) throw badParams(['deployment_id is invalid']);
    const d = project.deployments.find((x) => x.id === id);
    if (!d) throw new HttpError(404, { message: '404 Not found' });
    return d;
  }

  /**
   * Deployment's state machine (app/models/deployment.rb). Answers the event's name when
   * the transition is refused, as GitLab's validation error names it.
   */
  function deploymentTransition(from: string, to: string): string | undefined {
    switch (to) {
      case 'running':
        return from === 'created' || from === 'blocked' ? undefined : 'run';
      case 'success':
        return from === 'success' ? 'succeed' : undefined;
      case 'failed':
        return from === 'failed' ? 'drop' : undefined;
      case 'canceled':
        return from === 'canceled' ? 'cancel' : undefined;
      default:
        return 'unknown';
    }
  }

  function applyDeploymentStatus(
    req: ApiRequest,
    project: Project,
    d: Deployment,
    to: string,
  ): void {
    const refused = deploymentTransition(d.status, to);
    if (refused) throw validation('status', `cannot transition via "${refused}"`);
    d.status = to;
    d.updatedAt = new Date();
    if (['success', 'failed', 'canceled'].includes(to)) d.finishedAt = d.updatedAt;
    const env = project.environments.find((e) => e.id === d.environmentId);
    // Deployments::HooksWorker runs for running and finished statuses only
    if (env)
      recordHook(
        project,
        'Deployment Hook',
        deploymentHookPayload(project, d, env),
        req.cause,
        req.eventUuid,
      );
  }

  function createDeploymentEndpoint(req: ApiRequest, project: Project): Answer {
    const check = new ParamCheck(req.params);
    const environment = check.requireString('environment', { allowBlank: false });
    const sha = check.requireString('sha', { allowBlank: false });
    const ref = check.requireString('ref', { allowBlank: false });
    const tag = check.requireBoolean('tag');
    const status = check.requireString('status', { values: DEPLOYMENT_WRITE_STATUSES });
    check.done();
    requireWrite(req);
    if (
      environment === undefined ||
      sha === undefined ||
      ref === undefined ||
      tag === undefined ||
      status === undefined
    ) {
      throw badParams(['invalid parameters']);
    }
    const refKnown =
      project.branches.includes(ref) || project.tags.includes(ref) || project.commits.has(ref);
    if (!refKnown)
      throw new HttpError(400, { message: { ref: ['The branch or tag does not exist'] } });
    const env = findOrCreateEnvironment(project, environment);
    if (!project.commits.has(sha)) throw validation('sha', 'The commit does not exist');
    // Deployments::CreateService returns the environment's last successful deployment when
    // the request repeats it exactly
    const last = project.deployments
      .filter((d) => d.environmentId === env.id && d.status === 'success')
      .sort((a, b) => b.id - a.id)[0];
    if (
      last &&
      last.ref === ref &&
      last.tag === tag &&
      last.sha === sha &&
      last.status === status
    ) {
      return { status: 201, body: deploymentEntity(project, last) };
    }
    const now = new Date();
    const d: Deployment = {
      id: newId(),
      iid: project.deployments.length + 1,
      environmentId: env.id,
      sha,
      ref,
      tag,
      status: 'created',
      fromCiJob: false,
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
    };
    project.deployments.push(d);
    applyDeploymentStatus(req, project, d, status);
    return { status: 201, body: deploymentEntity(project, d) };
  }

  function getDeploymentEndpoint(_req: ApiRequest, project: Project, rawId: string): Answer {
    return { status: 200, body: deploymentEntity(project, findDeployment(project, rawId)) };
  }

  function updateDeploymentEndpoint(req: ApiRequest, project: Project, rawId: string): Answer {
    const check = new ParamCheck(req.params);
    const status = check.requireString('status', { values: DEPLOYMENT_WRITE_STATUSES });
    check.done();
    requireWrite(req);
    const d = findDeployment(project, rawId);
    if (d.fromCiJob) {
      throw new HttpError(403, {
        message:
          '403 Forbidden - Deployments created using GitLab CI can not be updated using the API',
      });
    }
    if (status === undefined) throw badParams(['status is missing']);
    applyDeploymentStatus(req, project, d, status);
    return { status: 200, body: deploymentEntity(project, d) };
  }

  /** CommitStatus's state machine, as Ci::CreateCommitStatusService drives it. */
  function commitStatusTransition(
    job: Job,
    state: string,
  ): { event: string; ok: boolean; to: PipelineStatus } {
    const from = job.status;
    switch (state) {
      case 'pending':
        return {
          event: 'enqueue',
          ok: ['created', 'skipped', 'manual', 'scheduled'].includes(from),
          to: 'pending',
        };
      case 'running':
        // `job.enqueue` first (a no-op unless created), then `run!` from pending
        return { event: 'run', ok: from === 'created' || from === 'pending', to: 'running' };
      case 'success':
        return {
          event: 'success',
          ok: ['created', 'pending', 'running'].includes(from),
          to: 'success',
        };
      case 'failed':
        return {
          event: 'drop',
          ok: ['created', 'pending', 'running'].includes(from),
          to: 'failed',
        };
      case 'canceled':
        return {
          event: 'cancel',
          ok: ['created', 'pending', 'running', 'manual', 'scheduled'].includes(from),
          to: 'canceled',
        };
      case 'skipped':
        return { event: 'skip', ok: ['created', 'pending'].includes(from), to: 'skipped' };
      default:
        return { event: 'unknown', ok: false, to: from };
    }
  }

  function postCommitStatus(req: ApiRequest, project: Project, sha: string): Answer {
    const check = new ParamCheck(req.params);
    const state = check.requireString('state', { values: COMMIT_STATES });
    const refParam = check.optionalString('ref');
    const targetUrl = check.optionalString('target_url');
    const description = check.optionalString('description');
    const nameParam = check.optionalString('name');
    const context = check.optionalString('context');
    check.optionalFloat('coverage');
    const pipelineId = check.optionalInteger('pipeline_id');
    check.done();
    requireWrite(req);
    if (state === undefined) throw new HttpError(400, { message: 'State is required' });
    if (!project.commits.has(sha)) throw notFound('Commit');

    const newestFirst = project.pipelines.filter((p) => p.sha === sha).sort((a, b) => b.id - a.id);
    const matching = newestFirst.find(
      (p) =>
        (refParam === undefined || p.ref === refParam) &&
        (pipelineId === undefined || p.id === pipelineId),
    );
    const ref = refParam ?? matching?.ref ?? project.commits.get(sha)?.[0];
    if (!ref) throw notFound('References for commit');
    if (pipelineId !== undefined && !matching)
      throw notFound('Pipeline for pipeline_id, sha and ref');

    let pipeline = matching;
    let newPipeline = false;
    if (!pipeline) {
      const now = new Date();
      pipeline = {
        id: newId(),
        iid: project.pipelines.length + 1,
        sha,
        ref,
        tag: project.tags.includes(ref),
        source: 'external',
        status: 'created',
        jobs: [],
        createdAt: now,
        updatedAt: now,
        finishedAt: null,
      };
      project.pipelines.push(pipeline);
      newPipeline = true;
    }
    const name = nameParam ?? context ?? 'default';
    if (targetUrl !== undefined && !isHttpUrl(targetUrl)) {
      throw validation('target_url', 'is blocked: Only allowed schemes are http, https');
    }
    if (description !== undefined && description.length > 255) {
      throw validation('description', 'is too long (maximum is 255 characters)');
    }
    const now = new Date();
    // only a running or pending status of the same name is updated; otherwise a new one is
    // added and the old one counts as retried
    const existing = pipeline.jobs.find(
      (j) =>
        j.external &&
        !j.retried &&
        j.name === name &&
        j.ref === ref &&
        (j.status === 'running' || j.status === 'pending'),
    );
    const job: Job = existing ?? {
      id: newId(),
      name,
      stage: 'external',
      status: 'created',
      ref,
      external: true,
      retried: false,
      targetUrl: null,
      description: null,
      createdAt: now,
      startedAt: null,
      finishedAt: null,
    };
    const t = commitStatusTransition(job, state);
    if (!t.ok) {
      throw new HttpError(400, {
        message: `Cannot transition status via :${t.event} from :${job.status} (Reason(s): Status cannot transition via "${t.event}")`,
      });
    }
    if (targetUrl !== undefined) job.targetUrl = targetUrl;
    if (description !== undefined) job.description = description;
    job.status = t.to;
    if (t.to === 'running') job.startedAt = now;
    if (TERMINAL.includes(t.to)) job.finishedAt = now;
    if (!existing) {
      for (const old of pipeline.jobs)
        if (old.external && old.name === name && old.ref === ref) old.retried = true;
      pipeline.jobs.push(job);
    }
    updatePipelineStatus(project, pipeline, req.cause, req.eventUuid, newPipeline);
    return { status: 201, body: commitStatusEntity(pipeline, job) };
  }

  function route(req: ApiRequest): Answer {
    const s = req.segments;
    // ['api', 'v4', 'projects', ':id', ...]
    if (s[0] !== 'api' || s[1] !== 'v4') throw new HttpError(404, { error: '404 Not Found' });
    if (s[2] !== 'projects' || s[3] === undefined || s[3] === '')
      throw new HttpError(404, { error: '404 Not Found' });
    const project = lookupProject(s[3]);
    const rest = s.slice(4);
    const m = req.method;
    const [a, b, c] = rest;
    if (a === undefined && m === 'GET') return getProject(req, project);
    if (a === 'pipelines' && b === undefined && m === 'GET') return listPipelines(req, project);
    if (a === 'pipelines' && b !== undefined && c === undefined && m === 'GET')
      return getPipeline(req, project, b);
    if (a === 'environments' && b === undefined && m === 'GET')
      return listEnvironments(req, project);
    if (a === 'environments' && b === undefined && m === 'POST')
      return createEnvironmentEndpoint(req, project);
    if (a === 'environments' && b !== undefined && c === undefined && m === 'GET') {
      return { status: 200, body: environmentEntity(project, findEnvironment(project, b)) };
    }
    if (a === 'environments' && b !== undefined && c === undefined && m === 'PUT')
      return updateEnvironmentEndpoint(req, project, b);
    if (a === 'deployments' && b === undefined && m === 'GET') return listDeployments(req, project);
    if (a === 'deployments' && b === undefined && m === 'POST')
      return createDeploymentEndpoint(req, project);
    if (a === 'deployments' && b !== undefined && c === undefined && m === 'GET')
      return getDeploymentEndpoint(req, project, b);
    if (a === 'deployments' && b !== undefined && c === undefined && m === 'PUT')
      return updateDeploymentEndpoint(req, project, b);
    if (a === 'statuses' && b !== undefined && c === undefined && m === 'POST')
      return postCommitStatus(req, project, b);
    throw new HttpError(404, { error: '404 Not Found' });
  }

  // --- HTTP plumbing

  function authenticate(
    headers: IncomingMessage['headers'],
    query: URLSearchParams,
  ): 'write' | 'read' | undefined {
    const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '')?.[1];
    const privateToken = headers['private-token'];
    const presented =
      typeof privateToken === 'string'
        ? privateToken
        : (bearer ?? query.get('private_token') ?? undefined);
    if (presented === undefined) return undefined;
    if (presented === options.token) return 'write';
    if (options.readOnlyToken !== undefined && presented === options.readOnlyToken) return 'read';
    return undefined;
  }

  async function readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** Grape merges query, form and JSON parameters into one set. */
  async function parseParams(
    req: IncomingMessage,
    raw: Buffer,
    query: URLSearchParams,
  ): Promise<{ params: Params; body: unknown }> {
    const params: Params = {};
    for (const [k, v] of query) params[k] = v;
    if (raw.length === 0) return { params, body: undefined };
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (type === 'application/json' || type.endsWith('+json')) {
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new HttpError(400, {
          error: "The provided content-type 'application/json' is not valid JSON",
        });
      }
      if (body && typeof body === 'object' && !Array.isArray(body)) Object.assign(params, body);
      return { params, body };
    }
    if (type === 'application/x-www-form-urlencoded' || type === 'multipart/form-data') {
      const form = await new Response(new Uint8Array(raw), {
        headers: { 'content-type': req.headers['content-type'] ?? type },
      }).formData();
      const body: Record<string, string> = {};
      for (const [k, v] of form) if (typeof v === 'string') body[k] = v;
      Object.assign(params, body);
      return { params, body };
    }
    throw new HttpError(415, { error: `The provided content-type '${type}' is not supported.` });
  }

  function redactHeaders(headers: IncomingMessage['headers']): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) {
      if (v === undefined) continue;
      out[k] =
        k === 'private-token' || k === 'authorization' || k === 'job-token'
          ? '[redacted]'
          : Array.isArray(v)
            ? v.join(', ')
            : v;
    }
    return out;
  }

  function takeFailure(method: string, path: string): number | undefined {
    const f = failures.find(
      (x) => x.remaining > 0 && (x.method === '*' || x.method === method) && x.pattern.test(path),
    );
    if (!f) return undefined;
    f.remaining -= 1;
    failures = failures.filter((x) => x.remaining > 0);
    return f.status;
  }

  function injectedBody(status: number): {
    body: unknown;
    headers: Record<string, string>;
    text?: string;
  } {
    if (status === 429)
      return {
        body: 'Retry later\n',
        text: 'Retry later\n',
        headers: { 'retry-after': '1', 'content-type': 'text/plain' },
      };
    if (status === 502)
      return {
        body: '502 Bad Gateway',
        text: '<html><body><h1>502 Bad Gateway</h1></body></html>',
        headers: { 'content-type': 'text/html' },
      };
    const reason: Record<number, string> = {
      500: 'Internal Server Error',
      503: 'Service Unavailable',
      504: 'Gateway Timeout',
    };
    return { body: { message: `${status} ${reason[status] ?? 'Error'}` }, headers: {} };
  }

  function send(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
    text?: string,
  ): void {
    const payload = text ?? JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      ...headers,
      'content-length': Buffer.byteLength(payload),
    });
    res.end(payload);
  }

  const sockets = new Set<Socket>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', baseUrl);
    const raw = await readBody(req);
    const query = Object.fromEntries(url.searchParams);

    if (url.pathname === '/-/calls' && method === 'GET') return send(res, 200, callLog);
    if (url.pathname === '/-/hooks' && method === 'GET') return send(res, 200, hookLog);

    const record = (status: number, body: unknown, response: unknown, injected: boolean): void => {
      const q = { ...query };
      if (q.private_token) q.private_token = '[redacted]';
      callLog.push({
        seq: ++seq,
        method,
        path: url.pathname,
        query: q,
        headers: redactHeaders(req.headers),
        body,
        status,
        response,
        injected,
      });
    };
    const rawBody = raw.length === 0 ? undefined : raw.toString('utf8');

    const injected = takeFailure(method, url.pathname);
    if (injected !== undefined) {
      if (injected === 0) {
        record(0, rawBody, null, true);
        req.socket.destroy();
        return;
      }
      const r = injectedBody(injected);
      record(injected, rawBody, r.body, true);
      return send(res, injected, r.body, r.headers, r.text);
    }

    let body: unknown = rawBody;
    try {
      const auth = authenticate(req.headers, url.searchParams);
      if (!auth) throw new HttpError(401, { message: '401 Unauthorized' });
      const parsed = await parseParams(req, raw, url.searchParams);
      body = parsed.body;
      delete parsed.params.private_token;
      const segments = pathSegments(url.pathname);
      const eventUuid = req.headers['x-gitlab-event-uuid'];
      const answer = route({
        method,
        url,
        segments,
        params: parsed.params,
        canWrite: auth === 'write',
        eventUuid: typeof eventUuid === 'string' ? eventUuid : undefined,
        cause: `${method} ${url.pathname}`,
      });
      record(answer.status, body, answer.body, false);
      send(res, answer.status, answer.body, answer.headers);
    } catch (err) {
      if (err instanceof HttpError) {
        record(err.status, body, err.body, false);
        send(res, err.status, err.body);
        return;
      }
      const message = err instanceof Error ? err.message : String(err);
      record(500, body, { message: `500 Internal Server Error (contract: ${message})` }, false);
      send(res, 500, { message: `500 Internal Server Error (contract: ${message})` });
    }
  }

  init();
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent)
        send(res, 500, { message: `500 Internal Server Error (contract: ${String(err)})` });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}`;

  const pipelineView = (p: Pipeline): PipelineView => ({
    id: p.id,
    iid: p.iid,
    sha: p.sha,
    ref: p.ref,
    status: p.status,
    source: p.source,
  });

  return {
    url: baseUrl,
    calls: () => callLog.map((c) => ({ ...c })),
    hooks: () => hookLog.map((h) => ({ ...h })),
    reset() {
      callLog = [];
      hookLog = [];
      failures = [];
      seq = 0;
      hookSeq = 0;
      init();
    },
    failNext(method, pathPattern, status, times = 1) {
      const pattern =
        typeof pathPattern === 'string'
          ? new RegExp(
              `^${pathPattern
                .split(/(\*\*|\*)/)
                .map((part) =>
                  part === '**'
                    ? '.*'
                    : part === '*'
                      ? '[^/]+'
                      : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'),
                )
                .join('')}$`,
            )
          : pathPattern;
      failures.push({ method: method.toUpperCase(), pattern, status, remaining: times });
    },
    addPipeline(projectRef, input) {
      const project = projectByRef(projectRef);
      const p = insertPipeline(project, input);
      recordHook(project, 'Pipeline Hook', pipelineHookPayload(project, p), 'seed', undefined);
      return pipelineView(p);
    },
    pipelines: (projectRef) => projectByRef(projectRef).pipelines.map(pipelineView),
    deployments(projectRef) {
      const project = projectByRef(projectRef);
      return project.deployments.map((d) => ({
        id: d.id,
        iid: d.iid,
        environment: project.environments.find((e) => e.id === d.environmentId)?.name ?? '',
        sha: d.sha,
        ref: d.ref,
        tag: d.tag,
        status: d.status,
      }));
    },
    environments: (projectRef) =>
      projectByRef(projectRef).environments.map((e) => ({
        id: e.id,
        name: e.name,
        tier: e.tier,
        external_url: e.externalUrl,
      })),
    commitStatuses(projectRef) {
      const project = projectByRef(projectRef);
      return project.pipelines.flatMap((p) =>
        p.jobs
          .filter((j) => j.external)
          .map((j) => ({
            id: j.id,
            pipelineId: p.id,
            sha: p.sha,
            ref: j.ref,
            name: j.name,
            status: j.status,
            targetUrl: j.targetUrl,
            description: j.description,
            retried: j.retried,
          })),
      );
    },
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

// `node test/support/gitlab-contract.ts contract.json`: for the sandbox. The JSON file holds
// ContractOptions; the token may instead come from GITLAB_TOKEN.
if (import.meta.main) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node test/support/gitlab-contract.ts <options.json>');
    process.exit(2);
  }
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as ContractOptions;
  const token = parsed.token || process.env.GITLAB_TOKEN;
  if (!token) {
    console.error('give "token" in the options file or GITLAB_TOKEN');
    process.exit(2);
  }
  const contract = await startGitLabContract({ ...parsed, token });
  console.log(JSON.stringify({ url: contract.url }));
  const stop = (): void => {
    void contract.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
