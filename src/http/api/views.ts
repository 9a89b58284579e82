import type { Job } from 'bullmq';
import { z } from 'zod';
import type { Target } from '../../config/schema.ts';
import { savedStepSchema } from '../../queue/jobs.ts';
import type { HistoryEntry, Release, TargetState } from '../../targets/state.ts';
import {
  JOB_STATES,
  type DeploymentView,
  type JobView,
  type ReleaseView,
  type TargetView,
} from './schemas.ts';

/** Stored shapes -> API shapes: the API's contract stays put when storage changes. */

export function releaseView(r: Release): ReleaseView {
  return {
    sha: r.sha,
    ref: r.ref,
    pipelineId: r.pipelineId,
    digest: r.digest ?? null,
    images: r.images,
    since: r.deployedAt,
    by: r.by,
    jobId: r.jobId,
  };
}

export function deploymentView(h: HistoryEntry): DeploymentView {
  return {
    jobId: h.jobId,
    kind: h.kind,
    sha: h.sha,
    ref: h.ref,
    pipelineId: h.pipelineId,
    outcome: h.outcome,
    reason: h.reason ?? null,
    by: h.by,
    startedAt: h.startedAt,
    finishedAt: h.finishedAt,
    steps: h.steps.map((s) => ({
      name: s.name,
      status: s.status,
      ms: s.ms,
      detail: s.detail ?? null,
    })),
  };
}

export async function targetView(
  t: Target,
  state: Pick<TargetState, 'current' | 'lastOutcome' | 'lastSuccessAt'>,
): Promise<TargetView> {
  const [current, last, lastSuccessAt] = await Promise.all([
    state.current(t.name),
    state.lastOutcome(t.name),
    state.lastSuccessAt(t.name),
  ]);
  return {
    name: t.name,
    environment: { name: t.environment.name, tier: t.environment.tier },
    current: current ? releaseView(current) : null,
    lastDeploy: last ? deploymentView(last) : null,
    lastSuccessAt,
  };
}

// Job payloads are read leniently: a job written by an older or newer rollhook still shows.
const jobDataView = z.looseObject({
  target: z.string().catch('(unknown)'),
  sha: z.string().optional().catch(undefined),
  toSha: z.string().optional().catch(undefined),
  ref: z.string().optional().catch(undefined),
  pipelineId: z.number().int().optional().catch(undefined),
  trigger: z
    .looseObject({ kind: z.string(), user: z.string().optional() })
    .optional()
    .catch(undefined),
  steps: z.record(z.string(), z.unknown()).optional().catch(undefined),
});
const resultView = z.looseObject({ outcome: z.string(), reason: z.string().optional() });
const knownState = z.enum(JOB_STATES).catch('unknown');

export type QueueName = JobView['queue'];

/**
 * `state` must be read before the job: BullMQ finishes a job atomically, so a job read after
 * its state said `failed` has its error, while one read before may not.
 */
export function jobView(job: Job, queue: QueueName, state: string): JobView {
  const data = jobDataView.parse(job.data ?? {});
  const progress = progressObject(job.progress);
  const steps = Object.entries(data.steps ?? {})
    .flatMap(([name, raw]) => {
      const s = savedStepSchema.safeParse(raw);
      return s.success
        ? [
            {
              name,
              status: s.data.status,
              ms: Math.max(0, s.data.ms),
              at: s.data.at,
              detail: s.data.detail ?? null,
            },
          ]
        : [];
    })
    .sort((a, b) => a.at.localeCompare(b.at));
  const result = resultView.safeParse(job.returnvalue);
  const iso = (ms: number | undefined): string | null =>
    typeof ms === 'number' && ms > 0 ? new Date(ms).toISOString() : null;
  return {
    id: job.id ?? '',
    queue,
    kind: queue === 'cleanup-ci' ? 'cleanup-ci' : job.name === 'rollback' ? 'rollback' : 'deploy',
    target: data.target,
    state: knownState.parse(state),
    step: typeof progress?.step === 'string' ? progress.step : null,
    progress,
    steps,
    attemptsMade: job.attemptsMade,
    attempts: job.opts.attempts ?? 1,
    result: result.success
      ? { outcome: result.data.outcome, reason: result.data.reason ?? null }
      : null,
    error: job.failedReason ? job.failedReason : null,
    sha: data.sha ?? data.toSha ?? null,
    ref: data.ref ?? null,
    pipelineId: data.pipelineId ?? null,
    by: data.trigger ? (data.trigger.user ?? data.trigger.kind) : null,
    createdAt: iso(job.timestamp) ?? new Date(0).toISOString(),
    startedAt: iso(job.processedOn),
    finishedAt: iso(job.finishedOn),
  };
}

/** Steps report objects; a bare number (BullMQ's own convention) becomes `{percent}`, 0 (BullMQ's default) none. */
function progressObject(p: unknown): Record<string, unknown> | null {
  if (typeof p === 'number') return p > 0 ? { percent: p } : null;
  if (p && typeof p === 'object' && !Array.isArray(p)) return p as Record<string, unknown>;
  return null;
}
