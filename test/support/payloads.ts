import { readFileSync } from 'node:fs';

const docExample = JSON.parse(
  readFileSync(new URL('../fixtures/gitlab/pipeline-success.json', import.meta.url), 'utf8'),
) as PipelinePayload;

export interface PipelinePayload {
  object_kind: string;
  object_attributes: {
    id: number;
    ref: string;
    tag: boolean;
    sha: string;
    source: string;
    status: string;
    [k: string]: unknown;
  };
  merge_request: unknown;
  user: { username: string; [k: string]: unknown };
  project: { id: number; path_with_namespace: string; [k: string]: unknown };
  [k: string]: unknown;
}

/**
 * GitLab's documented Pipeline Hook example, made a branch pipeline of the test project
 * (the documented one is a merge-request pipeline), with the given attributes.
 */
export function pipelineHook(
  attrs: Partial<PipelinePayload['object_attributes']> = {},
  project: { id: number; path_with_namespace: string } = {
    id: 1,
    path_with_namespace: 'group/app',
  },
): PipelinePayload {
  const base = structuredClone(docExample);
  return {
    ...base,
    merge_request: null,
    object_attributes: { ...base.object_attributes, ref: 'main', source: 'push', ...attrs },
    project: { ...base.project, ...project },
  };
}

/** A fresh 40-hex sha per call, so tests do not collide. */
export function randomSha(): string {
  return Array.from({ length: 40 }, () => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join(
    '',
  );
}
