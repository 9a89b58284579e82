import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it, vi } from 'vitest';
import {
  KubeAuthenticationError,
  KubeNotFoundError,
  KubePermissionError,
  KubeRequestError,
  KubeUnavailableError,
  isRetryable,
  toKubeError,
  type KubeOperation,
} from '../../src/kube/errors.ts';
import {
  changeCause,
  digestOf,
  imageIdRef,
  imageRef,
  imageRefsFor,
} from '../../src/kube/images.ts';
import { kubeConfigLoader } from '../../src/kube/kubeconfig.ts';
import { withRetry } from '../../src/kube/retry.ts';

const op: KubeOperation = {
  step: 'patch deployment images',
  verb: 'patch',
  resource: 'deployments.apps',
  namespace: 'prod',
  name: 'web',
  context: 'prod-cluster',
};
const apiError = (code: number, message = 'server says no'): ApiException<string> =>
  new ApiException(code, `HTTP ${code}`, JSON.stringify({ kind: 'Status', code, message }), {});
const fast = { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 };
const D = `sha256:${'ab'.repeat(32)}`;

describe('toKubeError', () => {
  it('names the missing verb, resource and namespace on 403, with the apiserver message', () => {
    const err = toKubeError(apiError(403, 'User "x" cannot patch resource "deployments"'), op, 1);
    expect(err).toBeInstanceOf(KubePermissionError);
    expect(err).toMatchObject({
      verb: 'patch',
      resource: 'deployments.apps',
      namespace: 'prod',
      objectName: 'web',
      context: 'prod-cluster',
    });
    expect(err.message).toBe(
      'patch deployment images: forbidden: rollhook needs verb "patch" on "deployments.apps" in namespace "prod" (context prod-cluster); grant it in the Role (k8s/base/rbac.yaml). apiserver: User "x" cannot patch resource "deployments"',
    );
    expect(isRetryable(err)).toBe(false);
  });

  it('says which Deployment and namespace on 404', () => {
    const err = toKubeError(apiError(404, 'deployments.apps "web" not found'), op, 1);
    expect(err).toBeInstanceOf(KubeNotFoundError);
    expect(err.message).toContain('deployments.apps prod/web (context prod-cluster) not found');
    expect(isRetryable(err)).toBe(false);
  });

  it('makes 5xx, 429, 409 and network errors retryable, and 401/422 not', () => {
    for (const code of [500, 503, 429, 409])
      expect(isRetryable(toKubeError(apiError(code), op, 5))).toBe(true);
    const net = toKubeError(
      new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:6443') }),
      op,
      5,
    );
    expect(net).toBeInstanceOf(KubeUnavailableError);
    expect(net.message).toContain(
      'network error (fetch failed: connect ECONNREFUSED 127.0.0.1:6443) after 5 attempt(s)',
    );
    expect(toKubeError(apiError(401), op, 1)).toBeInstanceOf(KubeAuthenticationError);
    const invalid = toKubeError(
      apiError(422, 'spec.template.spec.containers[0].image: Required value'),
      op,
      1,
    );
    expect(invalid).toBeInstanceOf(KubeRequestError);
    expect(isRetryable(invalid)).toBe(false);
    expect(invalid.message).toContain('Required value');
  });
});

describe('withRetry', () => {
  it('repeats transient failures and returns the eventual answer', async () => {
    const fn = vi
      .fn<() => Promise<string>>()
      .mockRejectedValueOnce(apiError(503))
      .mockRejectedValueOnce(apiError(409))
      .mockResolvedValue('ok');
    await expect(withRetry(op, fast, fn)).resolves.toBe('ok');
    expect(fn).toHaveBeenCalledTimes(3);
  });

  it('gives up after the policy with KubeUnavailableError, and at once on 403', async () => {
    const busy = vi.fn<() => Promise<string>>().mockRejectedValue(apiError(500));
    await expect(withRetry(op, fast, busy)).rejects.toMatchObject({
      name: 'KubeUnavailableError',
      status: 500,
      attempts: 3,
    });
    expect(busy).toHaveBeenCalledTimes(3);
    const forbidden = vi.fn<() => Promise<string>>().mockRejectedValue(apiError(403));
    await expect(withRetry(op, fast, forbidden)).rejects.toBeInstanceOf(KubePermissionError);
    expect(forbidden).toHaveBeenCalledTimes(1);
  });

  it('hands a conflict back at once when the caller must read again', async () => {
    const fn = vi.fn<() => Promise<string>>().mockRejectedValue(apiError(409));
    await expect(
      withRetry(op, fast, fn, undefined, { retryConflicts: false }),
    ).rejects.toMatchObject({ name: 'KubeUnavailableError', status: 409 });
    expect(fn).toHaveBeenCalledTimes(1);
  });
});

describe('image references', () => {
  const t = {
    namespace: 'prod',
    deployment: 'web',
    containers: { app: 'reg.example.com/g/app', side: 'reg.example.com/g/side' },
    pinDigest: true,
  };

  it('pins the digest after the tag, and refuses to pin without one', () => {
    expect(imageRef('reg.example.com/g/app', 'prod-1', D, true)).toBe(
      `reg.example.com/g/app:prod-1@${D}`,
    );
    expect(imageRef('reg.example.com/g/app', 'prod-1', D, false)).toBe(
      'reg.example.com/g/app:prod-1',
    );
    expect(imageRefsFor(t, 'prod-1', { app: D, 'reg.example.com/g/side': D })).toEqual({
      app: `reg.example.com/g/app:prod-1@${D}`,
      side: `reg.example.com/g/side:prod-1@${D}`,
    });
    expect(() => imageRefsFor(t, 'prod-1', { app: D })).toThrow(
      /reg.example.com\/g\/side:prod-1 needs its sha256 digest/,
    );
  });

  it('reads digests from references and runtime imageIDs', () => {
    expect(digestOf(`r:5000/a:t@${D}`)).toBe(D);
    expect(digestOf(D)).toBe(D);
    expect(digestOf('r:5000/a:t')).toBeUndefined();
    expect(imageIdRef(`docker-pullable://r/a@${D}`)).toBe(`r/a@${D}`);
  });

  it('writes a change-cause naming sha, pipeline and user', () => {
    expect(
      changeCause({ sha: '0123456789abcdef0123', pipelineId: 7, user: 'bob', source: 'web' }),
    ).toBe('rollhook deploy, sha 0123456789ab, pipeline 7, source web, by bob');
  });
});

describe('kubeConfigLoader', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rollhook-kc-'));
  const file = join(dir, 'config');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'a',
      clusters: [
        { name: 'one', cluster: { server: 'https://127.0.0.1:1' } },
        { name: 'two', cluster: { server: 'https://127.0.0.1:2' } },
      ],
      users: [{ name: 'u', user: { token: 't' } }],
      contexts: [
        { name: 'a', context: { cluster: 'one', user: 'u' } },
        { name: 'b', context: { cluster: 'two', user: 'u' } },
      ],
    }),
  );

  it('keeps one KubeConfig per context, switched to that context', () => {
    const load = kubeConfigLoader({ kubeconfigPath: file });
    expect(load(undefined).getCurrentCluster()?.server).toBe('https://127.0.0.1:1');
    expect(load('b').getCurrentCluster()?.server).toBe('https://127.0.0.1:2');
    expect(load('b')).toBe(load('b'));
    expect(() => load('c')).toThrow(
      'load kubeconfig: context "c" is not in the kubeconfig (it has: a, b)',
    );
  });
});
