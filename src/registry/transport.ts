import { logger } from '../log.ts';
import { RegistryAuthError, RegistryPermissionError, RegistryUnavailableError } from './errors.ts';
import { parseWwwAuthenticate, type Challenge } from './www-authenticate.ts';

/** What one HTTP exchange with a registry or its token server did: for metrics and counting. */
export interface RegistryRequestEvent {
  host: string;
  kind: 'registry' | 'token';
  method: string;
  /** HTTP status, or `network-error` when no answer came */
  status: number | 'network-error';
  durationMs: number;
}

export interface TransportOptions {
  /** defaults to the platform's fetch (undici) */
  fetch?: typeof fetch;
  /** attempts in all for network errors, 429 and 5xx (default 4) */
  attempts?: number;
  /** first backoff, doubled each retry with jitter (default 200 ms) */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** per request, including the body (default 30 s) */
  timeoutMs?: number;
  /** clock for token expiry; tests move it forward */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  onRequest?: (event: RegistryRequestEvent) => void;
}

export interface HostCredentials {
  host: string;
  /** base URL without trailing slash */
  url: string;
  username: string | undefined;
  password: string | undefined;
}

/** The action class a request needs; tokens are cached per challenge scope learned for it. */
export type ActionClass = 'pull' | 'push' | 'delete';

export interface RegistryResponse {
  status: number;
  headers: Headers;
  bytes: Uint8Array;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/**
 * HTTP to one registry host: the token challenge (Bearer or Basic), a token cache per
 * scope, and retries with backoff for network errors, 429 and 5xx (never for other 4xx).
 */
export class HostTransport {
  readonly creds: HostCredentials;
  private readonly fetchImpl: typeof fetch;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly onRequest: ((event: RegistryRequestEvent) => void) | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pendingTokens = new Map<string, Promise<string>>();
  /** `repository action` -> the Bearer challenge that the registry answered for it */
  private readonly challenges = new Map<string, Extract<Challenge, { scheme: 'bearer' }>>();
  private useBasic = false;

  constructor(creds: HostCredentials, opts: TransportOptions = {}) {
    this.creds = creds;
    this.fetchImpl = opts.fetch ?? fetch;
    this.attempts = Math.max(1, opts.attempts ?? 4);
    this.backoffMs = opts.backoffMs ?? 200;
    this.maxBackoffMs = opts.maxBackoffMs ?? 5000;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.onRequest = opts.onRequest;
  }

  /**
   * One API request with authentication. A 401 is answered once with fresh credentials
   * for the scope the registry named; a second 401 becomes a typed error.
   */
  async request(req: {
    method: string;
    path: string;
    repository: string;
    action: ActionClass;
    headers?: Record<string, string>;
    body?: Uint8Array;
  }): Promise<RegistryResponse> {
    const key = `${req.repository} ${req.action}`;
    let authorization = await this.preemptiveAuthorization(key);
    let fresh = false;
    for (;;) {
      const headers: Record<string, string> = { ...req.headers };
      if (authorization) headers.authorization = authorization;
      const res = await this.send(
        'registry',
        req.method,
        `${this.creds.url}${req.path}`,
        headers,
        req.body,
        req.path,
      );
      if (res.status !== 401) return res;

      const challenge = parseWwwAuthenticate(res.headers.get('www-authenticate'));
      if (!challenge)
        throw new RegistryAuthError(
          this.creds.host,
          `${req.method} ${req.path} answered 401 without a usable WWW-Authenticate challenge`,
        );
      if (challenge.scheme === 'basic') {
        if (!this.basicHeader())
          throw new RegistryAuthError(
            this.creds.host,
            'the registry asks for a username and password; none are configured',
          );
        if (fresh)
          throw new RegistryAuthError(
            this.creds.host,
            'the registry rejected the configured username or password',
          );
        this.useBasic = true;
        authorization = this.basicHeader();
        fresh = true;
        continue;
      }
      if (fresh) {
        // A token just issued for exactly this challenge: asking again cannot help.
        if (challenge.error === 'insufficient_scope') {
          throw new RegistryPermissionError({
            host: this.creds.host,
            repository: req.repository,
            action: actionsOf(challenge.scope) ?? req.action,
            username: this.creds.username,
          });
        }
        throw new RegistryAuthError(
          this.creds.host,
          `a fresh token was refused (${challenge.error ?? 'no reason given'}${challenge.errorDescription ? `: ${challenge.errorDescription}` : ''})`,
        );
      }
      if (challenge.error)
        logger.debug('registry token refused, fetching a new one', {
          host: this.creds.host,
          error: challenge.error,
          scope: challenge.scope,
        });
      const scope = challenge.scope ?? '';
      this.tokens.delete(tokenKey(challenge.realm, challenge.service, scope));
      this.challenges.set(key, challenge);
      authorization = `Bearer ${await this.fetchToken(challenge)}`;
      fresh = true;
    }
  }

  /** Forget every token, as after a restart; the next request runs the challenge again. */
  dropTokens(): void {
    this.tokens.clear();
  }

  /**
   * Credentials to send up front: Basic once the host asked for it; a Bearer token for the
   * scope this kind of request was challenged with before, renewed when it has expired.
   */
  private async preemptiveAuthorization(key: string): Promise<string | undefined> {
    if (this.useBasic) return this.basicHeader();
    const challenge = this.challenges.get(key);
    if (!challenge) return undefined;
    return `Bearer ${await this.fetchToken(challenge)}`;
  }

  private basicHeader(): string | undefined {
    if (this.creds.username === undefined) return undefined;
    return `Basic ${Buffer.from(`${this.creds.username}:${this.creds.password ?? ''}`).toString('base64')}`;
  }

  /** A cached token for the challenge's scope, or a new one; concurrent callers share one fetch. */
  private fetchToken(challenge: Extract<Challenge, { scheme: 'bearer' }>): Promise<string> {
    const key = tokenKey(challenge.realm, challenge.service, challenge.scope ?? '');
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > this.now()) return Promise.resolve(cached.token);
    let pending = this.pendingTokens.get(key);
    if (!pending) {
      pending = this.requestToken(challenge, key).finally(() => this.pendingTokens.delete(key));
      this.pendingTokens.set(key, pending);
    }
    return pending;
  }

  private async requestToken(
    challenge: Extract<Challenge, { scheme: 'bearer' }>,
    key: string,
  ): Promise<string> {
    let realm: URL;
    try {
      realm = new URL(challenge.realm, this.creds.url);
    } catch {
      throw new RegistryAuthError(
        this.creds.host,
        `token realm ${JSON.stringify(challenge.realm)} is not a URL`,
      );
    }
    if (challenge.service) realm.searchParams.set('service', challenge.service);
    if (challenge.scope)
      for (const s of challenge.scope.split(' ')) if (s) realm.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    const basic = this.basicHeader();
    if (basic) headers.authorization = basic;

    const started = this.now();
    const res = await this.send(
      'token',
      'GET',
      realm.toString(),
      headers,
      undefined,
      realm.pathname,
    );
    if (res.status === 401 || res.status === 403) {
      throw new RegistryAuthError(
        this.creds.host,
        `the token server ${realm.origin} rejected ${this.creds.username ? `user ${this.creds.username}` : 'anonymous access'} (HTTP ${res.status})`,
      );
    }
    if (res.status !== 200)
      throw new RegistryAuthError(
        this.creds.host,
        `the token server ${realm.origin} answered HTTP ${res.status}`,
      );
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder().decode(res.bytes));
    } catch {
      throw new RegistryAuthError(
        this.creds.host,
        `the token server ${realm.origin} answered something other than JSON`,
      );
    }
    const b = (body ?? {}) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const token =
      typeof b.token === 'string' && b.token
        ? b.token
        : typeof b.access_token === 'string'
          ? b.access_token
          : '';
    if (!token)
      throw new RegistryAuthError(
        this.creds.host,
        `the token server ${realm.origin} answered without a token`,
      );
    // The spec's default lifetime is 60 s; renew a little early so a token never expires in flight.
    const lifetimeMs =
      (typeof b.expires_in === 'number' && b.expires_in > 0 ? b.expires_in : 60) * 1000;
    const expiresAt = started + lifetimeMs - Math.min(10_000, lifetimeMs / 10);
    this.tokens.set(key, { token, expiresAt });
    return token;
  }

  /** One exchange, retried with backoff on network errors, timeouts, 429 and 5xx. */
  private async send(
    kind: 'registry' | 'token',
    method: string,
    url: string,
    headers: Record<string, string>,
    body: Uint8Array | undefined,
    pathForErrors: string,
  ): Promise<RegistryResponse> {
    let lastStatus: number | undefined;
    let lastErr: unknown;
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      const started = performance.now();
      let retryAfterMs: number | undefined;
      try {
        const res = await this.fetchImpl(url, {
          method,
          headers,
          body:
            body === undefined
              ? undefined
              : Buffer.from(body.buffer, body.byteOffset, body.byteLength),
          redirect: 'follow',
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        const bytes =
          method === 'HEAD' ? new Uint8Array() : new Uint8Array(await res.arrayBuffer());
        this.emit(kind, method, res.status, started);
        if (res.status !== 429 && res.status < 500)
          return { status: res.status, headers: res.headers, bytes };
        lastStatus = res.status;
        lastErr = undefined;
        retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      } catch (err) {
        this.emit(kind, method, 'network-error', started);
        lastStatus = undefined;
        lastErr = err;
      }
      if (attempt < this.attempts) {
        const backoff = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (attempt - 1));
        const delay =
          retryAfterMs !== undefined
            ? Math.min(retryAfterMs, this.maxBackoffMs)
            : backoff / 2 + Math.random() * (backoff / 2);
        logger.warn('registry request failed, retrying', {
          host: this.creds.host,
          method,
          path: pathForErrors,
          status: lastStatus ?? 'network-error',
          attempt,
          delayMs: Math.round(delay),
        });
        await this.sleep(delay);
      }
    }
    throw new RegistryUnavailableError({
      host: this.creds.host,
      method,
      path: pathForErrors,
      status: lastStatus,
      attempts: this.attempts,
      cause: lastErr,
    });
  }

  private emit(
    kind: 'registry' | 'token',
    method: string,
    status: number | 'network-error',
    started: number,
  ): void {
    try {
      this.onRequest?.({
        host: this.creds.host,
        kind,
        method,
        status,
        durationMs: performance.now() - started,
      });
    } catch (err) {
      logger.warn('registry onRequest hook failed', { error: err });
    }
  }
}

function tokenKey(realm: string, service: string | undefined, scope: string): string {
  return `${realm} ${service ?? ''} ${scope}`;
}

/** `repository:group/app:pull,push` -> `pull,push` */
function actionsOf(scope: string | undefined): string | undefined {
  if (!scope) return undefined;
  const first = scope.split(' ')[0] ?? '';
  const i = first.lastIndexOf(':');
  return i >= 0 ? first.slice(i + 1) : undefined;
}

function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
