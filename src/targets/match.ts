import type { Target } from '../config/schema.ts';

/** `release/*` style globs as in `.gitlab-ci.yml` rules: `*` is any run of characters. */
export function refMatches(patterns: readonly string[], ref: string): boolean {
  return patterns.some((p) => globToRegExp(p).test(ref));
}

export function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`);
}

/** A project given as numeric id or path matches the event's project by either. */
export function projectMatches(
  target: Target,
  project: { id: number; path_with_namespace?: string | undefined },
): boolean {
  const p = target.gitlab.project;
  return typeof p === 'number'
    ? p === project.id
    : p.toLowerCase() === project.path_with_namespace?.toLowerCase();
}

export function imageTag(
  template: string,
  vars: { sha: string; ref?: string; pipelineId?: number },
): string {
  return template
    .replaceAll('{sha}', vars.sha)
    .replaceAll('{shortSha}', vars.sha.slice(0, 8))
    .replaceAll('{ref}', (vars.ref ?? '').replace(/[^A-Za-z0-9_.-]/g, '-'))
    .replaceAll('{pipeline}', String(vars.pipelineId ?? ''));
}
