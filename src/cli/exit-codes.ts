import { ApiRefusedError, ApiResponseError, ApiUnavailableError } from './client.ts';

/** Exit codes a script can branch on; the README lists them. */
export const EXIT = {
  ok: 0,
  /** the job ended failed or rolled back */
  jobFailed: 1,
  /** bad arguments, or ROLLHOOK_TOKEN missing */
  usage: 2,
  /** 401 or 403: token missing, unknown, or outside its scope */
  auth: 3,
  /** 404: no such target or job */
  notFound: 4,
  /** 409 or 422: refused (already runs, older than accepted, image gone, nothing deploys) */
  refused: 5,
  /** rollhook unreachable, 5xx, or an answer the CLI does not understand */
  unavailable: 6,
  /** --wait gave up before the job ended */
  timeout: 7,
  /** the job ended without deploying (skipped: already runs; superseded by a newer pipeline) */
  notDeployed: 8,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export function exitCodeFor(err: unknown): ExitCode | undefined {
  if (err instanceof ApiRefusedError) {
    if (err.status === 401 || err.status === 403) return EXIT.auth;
    if (err.status === 404) return EXIT.notFound;
    if (err.status === 409 || err.status === 422) return EXIT.refused;
    return EXIT.usage;
  }
  if (err instanceof ApiUnavailableError || err instanceof ApiResponseError)
    return EXIT.unavailable;
  return undefined;
}
