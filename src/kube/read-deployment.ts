import { apiRequest } from './api-request.ts';
import { deploymentPath, type KubeCallContext } from './context.ts';
import type { KubeTarget } from './images.ts';
import { withRetry } from './retry.ts';
import { deploymentView, type DeploymentView } from './views.ts';

type Where = Pick<KubeTarget, 'namespace' | 'deployment'>;

/**
 * GET of the target's Deployment as the apiserver sent it, retried like every call; `step`
 * names it in errors. Undo needs every field of the pod template, so this is not narrowed.
 */
export function readDeploymentJson(
  ctx: KubeCallContext,
  target: Where,
  step: string,
  signal?: AbortSignal,
): Promise<unknown> {
  const { namespace, deployment: name } = target;
  return withRetry(
    { step, verb: 'get', resource: 'deployments.apps', namespace, name, context: ctx.context },
    ctx.retry,
    () => apiRequest(ctx.kc, { method: 'GET', path: deploymentPath(namespace, name), signal }),
    signal,
  );
}

/** The target's Deployment, read as the fields rollhook uses. */
export async function readDeployment(
  ctx: KubeCallContext,
  target: Where,
  step: string,
  signal?: AbortSignal,
): Promise<DeploymentView> {
  return deploymentView.parse(await readDeploymentJson(ctx, target, step, signal));
}
