import {
  ApiException,
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  RequestContext,
  type KubeConfig,
} from '@kubernetes/client-node';

/**
 * One JSON request to the apiserver with the kubeconfig's credentials and TLS settings.
 *
 * rollhook reads objects as plain JSON and validates the few fields it uses with zod,
 * instead of the client's typed models: those drop fields newer than the client, and a
 * rollback that copies a pod template back must not lose any.
 */
export interface ApiRequest {
  method: 'GET' | 'PATCH' | 'POST';
  /** path from the server root, e.g. /apis/apps/v1/namespaces/prod/deployments/app */
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal | undefined;
  /** per-request limit; a hung connection must not hold a deploy forever */
  timeoutMs?: number;
}

const http = new IsomorphicFetchHttpLibrary();

/** Resolves with the parsed JSON body; rejects with ApiException (status, Status body) or a network error. */
export async function apiRequest(kc: KubeConfig, req: ApiRequest): Promise<unknown> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/+$/, '') + req.path);
  for (const [k, v] of Object.entries(req.query ?? {}))
    if (v !== undefined) url.searchParams.set(k, v);
  const ctx = new RequestContext(url.toString(), HttpMethod[req.method]);
  await kc.applySecurityAuthentication(ctx);
  ctx.setHeaderParam('Accept', 'application/json');
  if (req.body !== undefined) {
    ctx.setHeaderParam('Content-Type', req.contentType ?? 'application/json');
    ctx.setBody(JSON.stringify(req.body));
  }
  const timeout = AbortSignal.timeout(req.timeoutMs ?? 30_000);
  ctx.setSignal(req.signal ? AbortSignal.any([req.signal, timeout]) : timeout);
  const res = await http.send(ctx).toPromise();
  const text = await res.body.text();
  if (res.httpStatusCode < 200 || res.httpStatusCode > 299) {
    throw new ApiException(
      res.httpStatusCode,
      `${req.method} ${url.pathname}: HTTP ${res.httpStatusCode}`,
      text,
      res.headers,
    );
  }
  return text ? JSON.parse(text) : undefined;
}
