import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  AppsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  type CoreV1Api as Core,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  KubeAdapter,
  KubePermissionError,
  isRetryable,
  type KubeTarget,
  type RolloutProgress,
} from '../../src/kube/index.ts';
import { adminClients, createTestNamespace, testDeployment } from '../support/cluster.ts';

/**
 * k8s/base/rbac.yaml against the real RBAC authorizer: bound to a token user in one
 * namespace, that user can run a whole deploy and rollback through the adapter, and cannot
 * read Secrets or touch a Deployment anywhere else.
 */

const REPO = 'registry.test/group/app/php-prod';
const RBAC_FILE = resolve(import.meta.dirname, '../../k8s/base/rbac.yaml');

const manifest = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: z.object({ name: z.string(), namespace: z.string().optional() }),
  rules: z
    .array(
      z.object({
        apiGroups: z.array(z.string()),
        resources: z.array(z.string()),
        verbs: z.array(z.string()),
      }),
    )
    .optional(),
  roleRef: z.object({ apiGroup: z.string(), kind: z.string(), name: z.string() }).optional(),
  subjects: z
    .array(z.object({ kind: z.string(), name: z.string(), namespace: z.string().optional() }))
    .optional(),
});
type Manifest = z.infer<typeof manifest>;

let admin: ReturnType<typeof adminClients>;
let deployerCore: Core;
let deployerApps: AppsV1Api;
let user: string;
let kube: KubeAdapter;
let granted: string;
let other: string;
let readOnly: string;
let clusterRoleName: string;
const created: string[] = [];
let rbacDocs: Manifest[] = [];

async function ignoreExists<T>(p: Promise<T>): Promise<void> {
  await p.then(
    () => undefined,
    (err: unknown) => {
      if (!(err && typeof err === 'object' && 'code' in err && err.code === 409)) throw err;
    },
  );
}

async function applyRbacFile(docs: Manifest[]): Promise<void> {
  for (const doc of docs) {
    if (doc.metadata.namespace)
      await ignoreExists(
        admin.core.createNamespace({ body: { metadata: { name: doc.metadata.namespace } } }),
      );
    if (doc.kind === 'ServiceAccount')
      await ignoreExists(
        admin.core.createNamespacedServiceAccount({
          namespace: doc.metadata.namespace ?? 'default',
          body: doc,
        }),
      );
    else if (doc.kind === 'ClusterRole')
      await ignoreExists(admin.rbac.createClusterRole({ body: doc }));
    else if (doc.kind === 'Role')
      await ignoreExists(
        admin.rbac.createNamespacedRole({
          namespace: doc.metadata.namespace ?? 'default',
          body: doc,
        }),
      );
    else if (doc.kind === 'RoleBinding')
      await ignoreExists(
        admin.rbac.createNamespacedRoleBinding({
          namespace: doc.metadata.namespace ?? 'default',
          body: {
            ...doc,
            roleRef: doc.roleRef ?? { apiGroup: '', kind: '', name: '' },
            subjects: doc.subjects ?? [],
          },
        }),
      );
    else throw new Error(`rbac.yaml: unexpected ${doc.kind}; extend this test`);
  }
}

function target(namespace: string): KubeTarget {
  return {
    context: user,
    namespace,
    deployment: 'app',
    containers: { app: REPO },
    pinDigest: false,
  };
}

async function can(
  subject: string,
  namespace: string,
  verb: string,
  resource: string,
  group = '',
): Promise<boolean> {
  const review = await admin.kc.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
    body: { spec: { user: subject, resourceAttributes: { namespace, verb, group, resource } } },
  });
  return review.status?.allowed === true;
}

beforeAll(async () => {
  const cluster = inject('cluster');
  admin = adminClients(cluster.kubeconfig);
  user = cluster.deployerContext;
  const docs = parseAllDocuments(readFileSync(RBAC_FILE, 'utf8')).map((d) =>
    manifest.parse(d.toJS()),
  );
  rbacDocs = docs;
  await applyRbacFile(docs);
  const clusterRole = docs.find((d) => d.kind === 'ClusterRole' || d.kind === 'Role');
  clusterRoleName = clusterRole?.metadata.name ?? '';
  expect(clusterRole?.kind).toBe('ClusterRole');

  granted = await createTestNamespace(admin.core, 'rbac-granted');
  other = await createTestNamespace(admin.core, 'rbac-other');
  readOnly = await createTestNamespace(admin.core, 'rbac-readonly');
  created.push(granted, other, readOnly);
  // What an operator does for each target namespace: bind the ClusterRole there.
  await admin.rbac.createNamespacedRoleBinding({
    namespace: granted,
    body: {
      metadata: { name: 'rollhook-deployer' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: clusterRoleName,
      },
      subjects: [{ kind: 'User', name: user, apiGroup: 'rbac.authorization.k8s.io' }],
    },
  });
  await admin.rbac.createNamespacedRole({
    namespace: readOnly,
    body: {
      metadata: { name: 'read' },
      rules: [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'] }],
    },
  });
  await admin.rbac.createNamespacedRoleBinding({
    namespace: readOnly,
    body: {
      metadata: { name: 'read' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read' },
      subjects: [{ kind: 'User', name: user, apiGroup: 'rbac.authorization.k8s.io' }],
    },
  });
  for (const ns of [granted, other, readOnly]) {
    await admin.apps.createNamespacedDeployment({
      namespace: ns,
      body: testDeployment('app', {
        containers: { app: `${REPO}:prod-v1` },
        replicas: 2,
        progressDeadlineSeconds: 5,
      }),
    });
  }
  await admin.core.createNamespacedSecret({
    namespace: granted,
    body: { metadata: { name: 'db' }, stringData: { password: 'not-for-rollhook' } },
  });

  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  kc.setCurrentContext(user);
  deployerCore = kc.makeApiClient(CoreV1Api);
  deployerApps = kc.makeApiClient(AppsV1Api);
  kube = new KubeAdapter({ kubeconfigPath: cluster.kubeconfig, retry: { baseDelayMs: 50 } });
});

afterAll(async () => {
  for (const ns of created) await admin.core.deleteNamespace({ name: ns }).catch(() => undefined);
  // The file's own objects go too: the cluster is shared, and the manifests test dry-runs
  // the same objects with `kubectl apply`, which warns about objects it did not create.
  for (const doc of rbacDocs) {
    const name = doc.metadata.name;
    const namespace = doc.metadata.namespace ?? 'default';
    const gone = (p: Promise<unknown>) => p.catch(() => undefined);
    if (doc.kind === 'ClusterRole') await gone(admin.rbac.deleteClusterRole({ name }));
    else if (doc.kind === 'RoleBinding')
      await gone(admin.rbac.deleteNamespacedRoleBinding({ name, namespace }));
    else if (doc.kind === 'Role') await gone(admin.rbac.deleteNamespacedRole({ name, namespace }));
    else if (doc.kind === 'ServiceAccount')
      await gone(admin.core.deleteNamespacedServiceAccount({ name, namespace }));
  }
});

describe('RBAC: k8s/base/rbac.yaml on the real authorizer', () => {
  it('lets the bound user run a whole deploy: patch, watch, fail, roll back, undo, read running images', async () => {
    const t = target(granted);
    expect((await kube.waitForRollout(t, { timeoutMs: 30_000 })).outcome).toBe('complete');

    const v2 = await kube.setImages(t, { app: `${REPO}:prod-v2` }, 'deploy v2');
    expect(v2.changed).toBe(true);
    expect((await kube.waitForRollout(t, { timeoutMs: 30_000 })).outcome).toBe('complete');

    const bad = await kube.setImages(t, { app: `${REPO}:prod-broken` }, 'deploy broken');
    const events: RolloutProgress[] = [];
    const failed = await kube.waitForRollout(t, {
      timeoutMs: 60_000,
      onProgress: (p) => events.push(p),
    });
    expect(failed.outcome).toBe('failed');
    // Pod hints need pods list/watch: granted.
    expect(events.flatMap((e) => e.hints).some((h) => h.reason === 'ImagePullBackOff')).toBe(true);

    const back = await kube.rollback(t, bad.previousImages, 'rollback', { timeoutMs: 30_000 });
    expect(back.rollout.outcome).toBe('complete');
    const undo = await kube.undoToRevision(t, 1, { timeoutMs: 30_000 });
    expect(undo.rollout.outcome).toBe('complete');

    const running = await kube.runningDigests([t]);
    expect(running.has(`${REPO}:prod-v1`)).toBe(true);
  });

  it('refuses Secrets, and any Deployment outside the granted namespace, naming the missing verb', async () => {
    await expect(
      deployerCore.readNamespacedSecret({ name: 'db', namespace: granted }),
    ).rejects.toMatchObject({ code: 403 });
    await expect(deployerCore.listNamespacedSecret({ namespace: granted })).rejects.toMatchObject({
      code: 403,
    });
    await expect(
      deployerApps.patchNamespacedDeployment({
        name: 'app',
        namespace: other,
        body: [{ op: 'replace', path: '/spec/replicas', value: 1 }],
      }),
    ).rejects.toMatchObject({ code: 403 });

    const elsewhere = await kube
      .setImages(target(other), { app: `${REPO}:prod-v9` }, 'x')
      .catch((e: unknown) => e);
    expect(elsewhere).toBeInstanceOf(KubePermissionError);
    expect(elsewhere).toMatchObject({
      verb: 'get',
      resource: 'deployments.apps',
      namespace: other,
      context: user,
    });
    expect(isRetryable(elsewhere)).toBe(false);
    expect(String(elsewhere)).toContain(
      `needs verb "get" on "deployments.apps" in namespace "${other}"`,
    );

    // Where the user may read but not patch, the error names patch.
    const readOnlyErr = await kube
      .setImages(target(readOnly), { app: `${REPO}:prod-v9` }, 'x')
      .catch((e: unknown) => e);
    expect(readOnlyErr).toMatchObject({
      name: 'KubePermissionError',
      verb: 'patch',
      namespace: readOnly,
    });
    const waitErr = await kube
      .waitForRollout(target(readOnly), { timeoutMs: 10_000 })
      .catch((e: unknown) => e);
    expect(waitErr).toMatchObject({
      name: 'KubePermissionError',
      verb: 'list',
      resource: 'deployments.apps',
    });

    const untouched = await admin.apps.readNamespacedDeployment({ name: 'app', namespace: other });
    expect(untouched.spec?.template.spec?.containers[0]?.image).toBe(`${REPO}:prod-v1`);
  });

  it('grants exactly the verbs rollhook uses, per the authorizer', async () => {
    const allowed: [string, string, string][] = [
      ['get', 'deployments', 'apps'],
      ['list', 'deployments', 'apps'],
      ['watch', 'deployments', 'apps'],
      ['patch', 'deployments', 'apps'],
      ['list', 'replicasets', 'apps'],
      ['list', 'pods', ''],
      ['watch', 'pods', ''],
    ];
    const denied: [string, string, string][] = [
      ['create', 'deployments', 'apps'],
      ['update', 'deployments', 'apps'],
      ['delete', 'deployments', 'apps'],
      ['patch', 'replicasets', 'apps'],
      ['delete', 'pods', ''],
      ['create', 'pods/exec', ''],
      ['get', 'secrets', ''],
      ['list', 'secrets', ''],
      ['get', 'configmaps', ''],
    ];
    for (const [verb, resource, group] of allowed)
      expect([verb, resource, await can(user, granted, verb, resource, group)]).toEqual([
        verb,
        resource,
        true,
      ]);
    for (const [verb, resource, group] of denied)
      expect([verb, resource, await can(user, granted, verb, resource, group)]).toEqual([
        verb,
        resource,
        false,
      ]);
    for (const [verb, resource, group] of allowed)
      expect([verb, resource, await can(user, other, verb, resource, group)]).toEqual([
        verb,
        resource,
        false,
      ]);

    // The file's own binding: the rollhook ServiceAccount may deploy in its namespace only.
    const sa = 'system:serviceaccount:rollhook:rollhook';
    expect(await can(sa, 'rollhook', 'patch', 'deployments', 'apps')).toBe(true);
    expect(await can(sa, granted, 'patch', 'deployments', 'apps')).toBe(false);
    expect(await can(sa, 'rollhook', 'get', 'secrets')).toBe(false);
  });
});
