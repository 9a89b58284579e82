/**
 * Why the API refused a deploy or rollback that was well-formed: each cause its own class,
 * each carrying what an operator needs to act on it. 422: the request names something that
 * cannot deploy; 409: the target's state forbids it now.
 */

export abstract class RefusedError extends Error {
  abstract readonly status: 409 | 422;
  /** the job the refusal is about, when there is one (an existing duplicate, the deploy that runs) */
  readonly jobId: string | undefined;

  constructor(message: string, jobId?: string) {
    super(message);
    this.jobId = jobId;
  }
}

export class RefNotDeployableError extends RefusedError {
  override readonly name = 'RefNotDeployableError';
  readonly status = 422;
  readonly target: string;
  readonly ref: string;

  constructor(target: string, ref: string, refs: readonly string[], how: string) {
    super(`${how} ${ref}, which does not deploy to ${target} (its refs: ${refs.join(', ')})`);
    this.target = target;
    this.ref = ref;
  }
}

export class NoSuccessfulPipelineError extends RefusedError {
  override readonly name = 'NoSuccessfulPipelineError';
  readonly status = 422;
  readonly project: string | number;

  constructor(project: string | number, what: string) {
    super(
      `GitLab knows no successful pipeline for ${what} in project ${project}: only a commit whose pipeline succeeded can deploy`,
    );
    this.project = project;
  }
}

export class AlreadyRunningError extends RefusedError {
  override readonly name = 'AlreadyRunningError';
  readonly status = 409;
  readonly sha: string;

  constructor(target: string, sha: string, jobId: string, since: string) {
    super(
      `${target} already runs ${sha} (deployed by job ${jobId} at ${since}); send "force": true to deploy it again`,
      jobId,
    );
    this.sha = sha;
  }
}

/** The queue refused: an older pipeline than one already accepted, or the same one again. */
export class NotNewerError extends RefusedError {
  override readonly name = 'NotNewerError';
  readonly status = 409;

  constructor(reason: string, jobId?: string) {
    super(`${reason}; send "force": true to deploy it anyway`, jobId);
  }
}

export class UnknownReleaseError extends RefusedError {
  override readonly name = 'UnknownReleaseError';
  readonly status = 422;

  /** matches: the shas of recorded releases that start with `to` (none, or more than one) */
  constructor(target: string, to: string, matches: readonly string[]) {
    super(
      matches.length > 1
        ? `"${to}" matches several releases of ${target} (${matches.join(', ')}); give more of the sha`
        : `no release of ${target} that rollhook deployed has sha ${to}; GET /api/v1/targets/${target}/deployments lists them`,
    );
  }
}

export class NoPreviousReleaseError extends RefusedError {
  override readonly name = 'NoPreviousReleaseError';
  readonly status = 409;

  constructor(target: string, current: string | undefined) {
    super(
      current
        ? `${target} has no release before ${current} that rollhook deployed; nothing to roll back to`
        : `${target} has no release deployed by rollhook; nothing to roll back to`,
    );
  }
}

export class ReleaseRunningError extends RefusedError {
  override readonly name = 'ReleaseRunningError';
  readonly status = 409;

  constructor(target: string, sha: string, jobId: string) {
    super(`${target} already runs ${sha}; rolling back to it would change nothing`, jobId);
  }
}

export class ReleaseImageGoneError extends RefusedError {
  override readonly name = 'ReleaseImageGoneError';
  readonly status = 409;
  readonly image: string;

  constructor(target: string, sha: string, image: string) {
    super(
      `cannot roll back ${target} to ${sha}: image ${image} no longer exists in the registry (deleted after it was superseded); ` +
        'roll back to a newer release with "to", or redeploy a commit whose pipeline rebuilds it',
    );
    this.image = image;
  }
}
