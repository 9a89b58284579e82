import { randomBytes } from 'node:crypto';

/*
 * BullMQ job ids: re-adding an existing id is a no-op while that job is kept, which is
 * what makes a redelivered or re-fired webhook create no second job. An id may not be all
 * digits and may not contain ':' (BullMQ splits keys on it), hence the dashes.
 */

export function deployJobId(target: string, pipelineId: number): string {
  return `deploy-${target}-${pipelineId}`;
}

/** Forced and manual redeploys are new intents each time, so their ids are unique. */
export function forcedDeployJobId(target: string, pipelineId: number): string {
  return `deploy-${target}-${pipelineId}-force-${randomBytes(4).toString('hex')}`;
}

export function rollbackJobId(target: string): string {
  return `rollback-${target}-${Date.now()}-${randomBytes(3).toString('hex')}`;
}

export function cleanupCiJobId(target: string, pipelineId: number): string {
  return `cleanup-ci-${target}-${pipelineId}`;
}
