import { describe, expect, it } from 'vitest';
import { expandCiTag, refSlug } from '../../workers/cleanup-ci.ts';

describe('CI tag templates', () => {
  const data = {
    sha: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    ref: 'Feature/JIRA-12_login',
    pipelineId: 991,
  };

  it('expands {sha}, {shortSha}, {ref} and {pipeline}', () => {
    expect(expandCiTag('{sha}', data)).toBe(data.sha);
    expect(expandCiTag('ci-{shortSha}', data)).toBe('ci-a1b2c3d4');
    expect(expandCiTag('ci-{ref}-{pipeline}', data)).toBe('ci-feature-jira-12-login-991');
    expect(expandCiTag('static', data)).toBe('static');
  });

  it('slugs refs as GitLab does for CI_COMMIT_REF_SLUG', () => {
    expect(refSlug('main')).toBe('main');
    expect(refSlug('-Release/2.0-')).toBe('release-2-0');
    expect(refSlug('x'.repeat(70))).toHaveLength(63);
  });
});
