/** Queue names. Deploys and rollbacks share one queue so one per-target lock orders them. */
export const DEPLOY_QUEUE = 'deploy';
export const CLEANUP_CI_QUEUE = 'cleanup-ci';
export const QUEUE_NAMES = [DEPLOY_QUEUE, CLEANUP_CI_QUEUE] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];
