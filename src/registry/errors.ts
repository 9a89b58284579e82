/**
 * Registry errors, typed by cause so the job's retry map can tell "try again later"
 * (RegistryUnavailableError) from "a person must fix something" (everything else).
 * Messages never carry credentials or tokens.
 */

/** Network error, timeout, 429 or 5xx that outlived the retries: the job may retry later. */
export class RegistryUnavailableError extends Error {
  override readonly name = 'RegistryUnavailableError';
  readonly host: string;
  readonly method: string;
  readonly path: string;
  /** last HTTP status, or undefined for a network error */
  readonly status: number | undefined;
  readonly attempts: number;

  constructor(opts: {
    host: string;
    method: string;
    path: string;
    status: number | undefined;
    attempts: number;
    cause?: unknown;
  }) {
    const what =
      opts.status === undefined
        ? `network error (${describeCause(opts.cause)})`
        : `HTTP ${opts.status}`;
    super(
      `registry ${opts.host} unavailable: ${opts.method} ${opts.path} failed with ${what} after ${opts.attempts} attempt(s)`,
      { cause: opts.cause },
    );
    this.host = opts.host;
    this.method = opts.method;
    this.path = opts.path;
    this.status = opts.status;
    this.attempts = opts.attempts;
  }
}

/** The credentials authenticate but may not do this (`insufficient_scope`): not retryable. */
export class RegistryPermissionError extends Error {
  override readonly name = 'RegistryPermissionError';
  readonly host: string;
  readonly repository: string;
  /** the actions the registry asked for, e.g. `delete` or `pull,push` */
  readonly action: string;
  readonly username: string | undefined;

  constructor(opts: {
    host: string;
    repository: string;
    action: string;
    username: string | undefined;
  }) {
    super(
      `registry ${opts.host}: ${opts.username ? `user ${opts.username}` : 'anonymous access'} may not ${opts.action} on repository ${opts.repository} (insufficient_scope); grant that permission or change the config`,
    );
    this.host = opts.host;
    this.repository = opts.repository;
    this.action = opts.action;
    this.username = opts.username;
  }
}

/** Bad credentials, or a fresh token the registry still calls invalid: not retryable. */
export class RegistryAuthError extends Error {
  override readonly name = 'RegistryAuthError';
  readonly host: string;
  readonly reason: string;

  constructor(host: string, reason: string) {
    super(`registry ${host}: authentication failed: ${reason}`);
    this.host = host;
    this.reason = reason;
  }
}

export class ManifestNotFoundError extends Error {
  override readonly name = 'ManifestNotFoundError';
  readonly repository: string;
  readonly reference: string;

  constructor(repository: string, reference: string) {
    super(`manifest ${repository}:${reference} not found`);
    this.repository = repository;
    this.reference = reference;
  }
}

/** Any other 4xx: the request itself is wrong, repeating it cannot help. */
export class RegistryRequestError extends Error {
  override readonly name = 'RegistryRequestError';
  readonly host: string;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** first error code of the registry's JSON error body, e.g. MANIFEST_INVALID */
  readonly code: string | undefined;

  constructor(opts: {
    host: string;
    method: string;
    path: string;
    status: number;
    code: string | undefined;
    detail: string | undefined;
  }) {
    super(
      `registry ${opts.host}: ${opts.method} ${opts.path} answered ${opts.status}${opts.code ? ` ${opts.code}` : ''}${opts.detail ? `: ${opts.detail}` : ''}`,
    );
    this.host = opts.host;
    this.method = opts.method;
    this.path = opts.path;
    this.status = opts.status;
    this.code = opts.code;
  }
}

/** The bytes do not hash to the digest that names them: never trust or copy them. */
export class DigestMismatchError extends Error {
  override readonly name = 'DigestMismatchError';
  readonly expected: string;
  readonly actual: string;
  readonly what: string;

  constructor(what: string, expected: string, actual: string) {
    super(`digest mismatch for ${what}: expected ${expected}, got ${actual}`);
    this.what = what;
    this.expected = expected;
    this.actual = actual;
  }
}

/** A manifest whose media type rollhook cannot copy faithfully (schema1, unknown, or body and header disagree). */
export class UnsupportedMediaTypeError extends Error {
  override readonly name = 'UnsupportedMediaTypeError';
  readonly what: string;
  readonly mediaType: string;

  constructor(what: string, mediaType: string, why: string) {
    super(`unsupported manifest ${what} (${mediaType || 'no media type'}): ${why}`);
    this.what = what;
    this.mediaType = mediaType;
  }
}

/** A repository reference that is not `host[:port]/path`. */
export class InvalidRepositoryError extends Error {
  override readonly name = 'InvalidRepositoryError';
  readonly repository: string;

  constructor(repository: string, why: string) {
    super(`invalid image repository ${JSON.stringify(repository)}: ${why}`);
    this.repository = repository;
  }
}

/** rollhook never deletes a tag that a protected pattern names (a misconfigured `ciTags`, say). */
export class ProtectedTagError extends Error {
  override readonly name = 'ProtectedTagError';
  readonly repository: string;
  readonly tag: string;
  readonly pattern: string;

  constructor(repository: string, tag: string, pattern: string) {
    super(`refusing to delete ${repository}:${tag}: the tag matches protected pattern ${pattern}`);
    this.repository = repository;
    this.tag = tag;
    this.pattern = pattern;
  }
}

/**
 * The registry accepted a write but reading back shows another state (a concurrent writer,
 * or a registry whose reads lag its writes). The operations are idempotent, so a retry is safe.
 */
export class RegistryStateError extends Error {
  override readonly name = 'RegistryStateError';
  readonly repository: string;
  readonly reference: string;

  constructor(repository: string, reference: string, detail: string) {
    super(`registry state of ${repository}:${reference} is not what was written: ${detail}`);
    this.repository = repository;
    this.reference = reference;
  }
}

/** Only a registry that is down, overloaded or lagging may answer differently later. */
export function isRetryable(err: unknown): boolean {
  return err instanceof RegistryUnavailableError || err instanceof RegistryStateError;
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause.cause as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' ? `${cause.message}: ${code}` : cause.message;
  }
  return String(cause);
}
