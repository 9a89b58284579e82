import { KubeConfig } from '@kubernetes/client-node';
import { KubeRequestError } from './errors.ts';

/** Loads the kubeconfig for a target's context; undefined means the default context. */
export type KubeConfigLoader = (context: string | undefined) => KubeConfig;

/**
 * The default chain (in-cluster service account, KUBECONFIG, ~/.kube/config) or one file,
 * switched to the target's context. One KubeConfig per context is kept, so one rollhook can
 * deploy to several clusters without reading files per call.
 */
export function kubeConfigLoader(
  opts: { kubeconfigPath?: string | undefined } = {},
): KubeConfigLoader {
  const cache = new Map<string, KubeConfig>();
  return (context) => {
    const key = context ?? '';
    const hit = cache.get(key);
    if (hit) return hit;
    const kc = new KubeConfig();
    try {
      if (opts.kubeconfigPath) kc.loadFromFile(opts.kubeconfigPath);
      else kc.loadFromDefault();
    } catch (err) {
      throw new KubeRequestError(
        'load kubeconfig',
        `cannot read ${opts.kubeconfigPath ?? 'the default kubeconfig (KUBECONFIG, ~/.kube/config or in-cluster)'}: ${err instanceof Error ? err.message : String(err)}`,
        { context, cause: err },
      );
    }
    if (context !== undefined) {
      const names = kc.getContexts().map((c) => c.name);
      if (!names.includes(context)) {
        throw new KubeRequestError(
          'load kubeconfig',
          `context "${context}" is not in the kubeconfig (it has: ${names.join(', ') || 'none'})`,
          { context },
        );
      }
      kc.setCurrentContext(context);
    }
    if (!kc.getCurrentCluster())
      throw new KubeRequestError(
        'load kubeconfig',
        `the kubeconfig's ${context ? `context "${context}"` : 'current context'} names no cluster`,
        { context },
      );
    cache.set(key, kc);
    return kc;
  };
}
