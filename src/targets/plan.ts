import type { Target } from '../config/schema.ts';
import { refMatches } from './match.ts';

export interface PipelineFacts {
  id: number;
  ref: string;
  tag: boolean;
  sha: string;
  source: string;
  status: string;
  terminal: boolean;
}

export type TargetDecision =
  | { target: Target; deploy: true; cleanupCi: boolean }
  | { target: Target; deploy: false; cleanupCi: boolean; reason: string };

/** What one pipeline event means for one target: deploy it, clean its CI images, or why not. */
export function decide(target: Target, p: PipelineFacts): TargetDecision {
  const cleanupCi = p.terminal && target.images.ciTags.length > 0;
  const no = (reason: string): TargetDecision => ({ target, deploy: false, cleanupCi, reason });
  if (p.status !== 'success') return no(`pipeline status is ${p.status}, not success`);
  if (!(target.gitlab.sources as readonly string[]).includes(p.source)) {
    return no(
      `pipeline source ${p.source} is not deployed (accepted: ${target.gitlab.sources.join(', ')})`,
    );
  }
  if (!refMatches(target.gitlab.refs, p.ref))
    return no(`ref ${p.ref} is not deployed (refs: ${target.gitlab.refs.join(', ')})`);
  return { target, deploy: true, cleanupCi };
}
