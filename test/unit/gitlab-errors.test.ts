/** toGitLabError: what gitbeaker and fetch throw, mapped to errors typed by cause. */
import { GitbeakerRequestError, GitbeakerRetryError, GitbeakerTimeoutError } from '@gitbeaker/rest';
import { describe, expect, it } from 'vitest';
import {
  GitLabAuthError,
  GitLabRequestError,
  GitLabUnavailableError,
  isGitLabError,
  toGitLabError,
} from '../../src/gitlab/errors.ts';

const TOKEN = 'glpat-unit-secret-0123';
const op = { operation: 'createDeployment', project: 'group/app' };

/** What gitbeaker throws for a non-2xx answer: the request (with its token header) rides along. */
function gitbeakerError(status: number, description: string): GitbeakerRequestError {
  const request = new Request(
    'https://gitlab.example.com/api/v4/projects/group%2Fapp/deployments',
    {
      method: 'POST',
      headers: { 'private-token': TOKEN },
    },
  );
  const response = new Response(JSON.stringify({ message: description }), {
    status,
    headers: { 'content-type': 'application/json' },
  });
  return new GitbeakerRequestError(description, { cause: { description, request, response } });
}

describe('toGitLabError', () => {
  it.each([
    [401, GitLabAuthError],
    [403, GitLabAuthError],
    [400, GitLabRequestError],
    [404, GitLabRequestError],
    [409, GitLabRequestError],
    [422, GitLabRequestError],
    [429, GitLabUnavailableError],
    [500, GitLabUnavailableError],
    [502, GitLabUnavailableError],
    [503, GitLabUnavailableError],
  ])('maps HTTP %i to %o', (status, type) => {
    const err = toGitLabError(gitbeakerError(status, `${status} message`), op, TOKEN);
    expect(err).toBeInstanceOf(type);
    expect(err).toMatchObject({ status, operation: 'createDeployment', project: 'group/app' });
    expect((err as { retryable: boolean }).retryable).toBe(type === GitLabUnavailableError);
  });

  it("keeps GitLab's message and drops the request that holds the token", () => {
    const err = toGitLabError(
      gitbeakerError(400, '{"ref":["The branch or tag does not exist"]}'),
      op,
      TOKEN,
    );
    expect(err).toBeInstanceOf(GitLabRequestError);
    expect((err as GitLabRequestError).gitlabMessage).toBe(
      '{"ref":["The branch or tag does not exist"]}',
    );
    expect((err as Error).message).toBe(
      'GitLab createDeployment (project group/app): 400 {"ref":["The branch or tag does not exist"]}',
    );
    expect((err as Error).cause).toBeUndefined();
    expect(JSON.stringify(err)).not.toContain(TOKEN);
  });

  it('scrubs the token should GitLab ever echo it', () => {
    const err = toGitLabError(
      gitbeakerError(400, `token ${TOKEN} is odd`),
      op,
      TOKEN,
    ) as GitLabRequestError;
    expect(err.message).not.toContain(TOKEN);
    expect(err.gitlabMessage).toBe('token [redacted] is odd');
  });

  it("reads the status from gitbeaker's retry error (it gave up on 429 or 502 itself)", () => {
    const err = toGitLabError(
      new GitbeakerRetryError(
        'Could not successfully complete this request after 10 retries, last status code: 429. Check the applicable rate limits for this endpoint.',
      ),
      op,
    );
    expect(err).toBeInstanceOf(GitLabUnavailableError);
    expect(err).toMatchObject({ status: 429 });
  });

  it('maps timeouts and network failures to unavailable without a status', () => {
    expect(toGitLabError(new GitbeakerTimeoutError('Query timeout was reached'), op)).toMatchObject(
      { name: 'GitLabUnavailableError', status: undefined },
    );
    const refused = new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
    });
    const err = toGitLabError(refused, op);
    expect(err).toBeInstanceOf(GitLabUnavailableError);
    expect((err as Error).message).toContain('ECONNREFUSED');
    expect(
      toGitLabError(
        new DOMException('The operation was aborted due to timeout', 'TimeoutError'),
        op,
      ),
    ).toBeInstanceOf(GitLabUnavailableError);
  });

  it('leaves errors that are not about GitLab alone, and does not wrap twice', () => {
    const bug = new RangeError('a bug');
    expect(toGitLabError(bug, op)).toBe(bug);
    const typed = new GitLabRequestError(op, 400, 'x');
    expect(toGitLabError(typed, op)).toBe(typed);
    expect(isGitLabError(typed)).toBe(true);
    expect(isGitLabError(bug)).toBe(false);
  });

  it('names the missing permission for 401 and 403', () => {
    expect((toGitLabError(gitbeakerError(401, '401 Unauthorized'), op) as Error).message).toContain(
      'gitlab.token is not accepted',
    );
    expect((toGitLabError(gitbeakerError(403, '403 Forbidden'), op) as Error).message).toContain(
      'lacks the role',
    );
  });
});
