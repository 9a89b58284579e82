import type { KubeConfig } from '@kubernetes/client-node';
import type { RetryPolicy } from './retry.ts';

/** What every call to one cluster needs: its credentials and how hard to retry. */
export interface KubeCallContext {
  kc: KubeConfig;
  /** kubeconfig context name, for error messages */
  context: string | undefined;
  retry: RetryPolicy;
  /** consecutive list/watch failures tolerated while waiting for a rollout */
  watchRetry: RetryPolicy;
  /** fieldManager on every write, so `kubectl get -o yaml --show-managed-fields` names rollhook */
  fieldManager: string;
}

export function deploymentPath(namespace: string, name?: string): string {
  return `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments${name ? `/${encodeURIComponent(name)}` : ''}`;
}

export function replicaSetsPath(namespace: string): string {
  return `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/replicasets`;
}

export function podsPath(namespace: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`;
}
