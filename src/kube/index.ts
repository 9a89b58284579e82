export { KubeAdapter, type KubeAdapterOptions } from './adapter.ts';
export {
  KubeAuthenticationError,
  KubeNotFoundError,
  KubePermissionError,
  KubeRequestError,
  KubeUnavailableError,
  isRetryable,
  type KubeError,
} from './errors.ts';
export { changeCause, digestOf, imageRef, imageRefsFor, type KubeTarget } from './images.ts';
export { kubeConfigLoader, type KubeConfigLoader } from './kubeconfig.ts';
export type { ListWatchStats } from './list-watch.ts';
export type { RetryPolicy } from './retry.ts';
export type { UndoResult, RollbackResult } from './rollback.ts';
export { judge, podHints, type PodHint, type RolloutProgress } from './rollout-status.ts';
export { CHANGE_CAUSE, PREVIOUS_IMAGES, type SetImagesResult } from './set-images.ts';
export type { RolloutOutcome, RolloutResult, WaitOptions } from './wait-for-rollout.ts';
