import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseAllDocuments, parseDocument, stringify } from 'yaml';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { controlPlaneBinaries } from '../support/cluster.ts';

/**
 * The kustomize base in k8s/ (and the example overlay) rendered by the real kubectl
 * (`kubectl kustomize`, built with the control plane) and applied to the test control plane
 * with server-side dry run: the apiserver's own validation, strict field checks and the
 * restricted Pod Security profile decide, not a schema copy in this test.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const BASE = join(ROOT, 'k8s/base');
const EXAMPLE = join(ROOT, 'k8s/overlays/example');

const object = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: z.looseObject({
    name: z.string(),
    namespace: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
  }),
});
type K8sObject = z.infer<typeof object>;

const probe = z.looseObject({
  httpGet: z.object({ path: z.string(), port: z.union([z.string(), z.number()]) }),
});
const container = z.looseObject({
  name: z.string(),
  image: z.string(),
  args: z.array(z.string()),
  env: z.array(z.object({ name: z.string(), value: z.string() })),
  envFrom: z.array(z.object({ secretRef: z.object({ name: z.string() }) })),
  ports: z.array(z.object({ name: z.string(), containerPort: z.number() })).optional(),
  livenessProbe: probe.optional(),
  readinessProbe: probe.optional(),
  startupProbe: probe.optional(),
  resources: z.object({
    requests: z.object({ cpu: z.string(), memory: z.string() }),
    limits: z.object({ memory: z.string() }),
  }),
  securityContext: z.object({
    allowPrivilegeEscalation: z.literal(false),
    readOnlyRootFilesystem: z.literal(true),
    capabilities: z.object({ drop: z.array(z.string()) }),
  }),
  volumeMounts: z.array(
    z.object({ name: z.string(), mountPath: z.string(), readOnly: z.boolean().optional() }),
  ),
});
const deployment = z.looseObject({
  metadata: z.looseObject({ name: z.string() }),
  spec: z.looseObject({
    replicas: z.number(),
    selector: z.object({ matchLabels: z.record(z.string(), z.string()) }),
    template: z.looseObject({
      metadata: z.looseObject({ labels: z.record(z.string(), z.string()) }),
      spec: z.looseObject({
        serviceAccountName: z.string().optional(),
        automountServiceAccountToken: z.boolean(),
        securityContext: z.looseObject({
          runAsNonRoot: z.literal(true),
          runAsUser: z.number(),
          seccompProfile: z.object({ type: z.string() }),
        }),
        containers: z.array(container).length(1),
        volumes: z.array(
          z.looseObject({ name: z.string(), configMap: z.object({ name: z.string() }).optional() }),
        ),
      }),
    }),
  }),
});
type Deployment = z.infer<typeof deployment>;

let kubectl: string;
let kubeconfig: string;
const workDirs: string[] = [];
const namespaces: string[] = [];

function run(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const res = spawnSync(kubectl, args, {
    input,
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  if (res.error) throw res.error;
  return { status: res.status ?? -1, stdout: res.stdout, stderr: res.stderr };
}

function render(dir: string): string {
  const res = run(['kustomize', dir]);
  if (res.status !== 0)
    throw new Error(`kubectl kustomize ${relative(ROOT, dir)} failed:\n${res.stderr}`);
  return res.stdout;
}

function parse(yamlText: string): K8sObject[] {
  return parseAllDocuments(yamlText).map((d) => object.parse(d.toJS()));
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o)
    throw new Error(
      `no ${kind} ${name} in: ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`,
    );
  return o;
}

/** An overlay in a temp dir that puts `dir` into a namespace of its own, as a user's overlay would. */
function renderInto(dir: string, namespace: string): string {
  const overlay = mkdtempSync(join(tmpdir(), 'rollhook-manifests-'));
  workDirs.push(overlay);
  // kustomize refuses absolute paths to a base; a relative one from the temp dir works.
  writeFileSync(
    join(overlay, 'kustomization.yaml'),
    stringify({ namespace, resources: [relative(overlay, dir)] }),
  );
  return render(overlay);
}

/** Creates the rendered Namespace for real (a dry-run cannot hold the objects inside it), then dry-runs everything. */
function dryRun(yamlText: string): { status: number; stdout: string; stderr: string } {
  const ns = parse(yamlText).filter((o) => o.kind === 'Namespace');
  for (const n of ns) {
    namespaces.push(n.metadata.name);
    const res = run(['--kubeconfig', kubeconfig, 'apply', '-f', '-'], stringify(n));
    if (res.status !== 0) throw new Error(`creating namespace ${n.metadata.name}: ${res.stderr}`);
  }
  return run(
    ['--kubeconfig', kubeconfig, 'apply', '--dry-run=server', '--validate=strict', '-f', '-'],
    yamlText,
  );
}

function uniqueNamespace(): string {
  return `rh-manifests-${randomBytes(3).toString('hex')}`;
}

/** Every `${NAME}` the config's values read (comments aside), set to a value its key accepts. */
function fakeEnv(text: string): Record<string, string> {
  const names = new Set<string>();
  const walk = (v: unknown): void => {
    if (typeof v === 'string')
      for (const m of v.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) names.add(m[1] ?? '');
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(parseDocument(text).toJS());
  return Object.fromEntries(
    [...names].map((n) => [
      n,
      n.endsWith('_SHA256')
        ? 'a'.repeat(64)
        : n === 'REDIS_URL'
          ? 'redis://redis:6379'
          : `value-of-${n.toLowerCase()}`,
    ]),
  );
}

/** The objects with each namespace renamed (objects, Namespaces and RoleBinding subjects), as YAML. */
function renameNamespaces(objects: K8sObject[], names: Record<string, string>): string {
  const to = (n: string | undefined): string | undefined => (n === undefined ? n : (names[n] ?? n));
  return objects
    .map((o) => {
      const copy = structuredClone(o) as K8sObject & { subjects?: { namespace?: string }[] };
      if (copy.kind === 'Namespace')
        copy.metadata.name = to(copy.metadata.name) ?? copy.metadata.name;
      if (copy.metadata.namespace) copy.metadata.namespace = to(copy.metadata.namespace);
      for (const s of copy.subjects ?? []) s.namespace = to(s.namespace);
      return stringify(copy);
    })
    .join('---\n');
}

beforeAll(() => {
  kubectl = join(controlPlaneBinaries(), 'kubectl');
  kubeconfig = inject('cluster').kubeconfig;
});

afterAll(() => {
  for (const d of workDirs) rmSync(d, { recursive: true, force: true });
  // No namespace controller runs in the test cluster: the namespaces stay Terminating, which is harmless.
  for (const n of namespaces)
    run([
      '--kubeconfig',
      kubeconfig,
      'delete',
      'namespace',
      n,
      '--wait=false',
      '--ignore-not-found',
    ]);
});

describe('k8s/base rendered by kubectl kustomize', () => {
  let objects: K8sObject[];
  let api: Deployment;
  let worker: Deployment;

  beforeAll(() => {
    objects = parse(render(BASE));
    api = deployment.parse(find(objects, 'Deployment', 'rollhook-api'));
    worker = deployment.parse(find(objects, 'Deployment', 'rollhook-worker'));
  });

  it('holds the API and worker Deployments, Service, PDB, ConfigMap, namespace and the RBAC from the Kubernetes issue', () => {
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    for (const k of [
      'Namespace/rollhook',
      'Deployment/rollhook-api',
      'Deployment/rollhook-worker',
      'Service/rollhook-api',
      'PodDisruptionBudget/rollhook-api',
      'ServiceAccount/rollhook',
      'ClusterRole/rollhook-deployer',
      'RoleBinding/rollhook-deployer',
    ]) {
      expect(kinds).toContain(k);
    }
    // No Secret with values in the repository: the Deployments only reference one.
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    for (const o of objects)
      if (o.kind !== 'Namespace' && o.kind !== 'ClusterRole')
        expect(o.metadata.namespace).toBe('rollhook');
  });

  it('runs the API with 2 replicas, probes on /healthz and /readyz, and no Kubernetes credentials', () => {
    expect(api.spec.replicas).toBe(2);
    const c = api.spec.template.spec.containers[0]!;
    expect(c.args).toEqual(['--role', 'api']);
    expect(c.livenessProbe?.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe?.httpGet.path).toBe('/readyz');
    expect(c.startupProbe?.httpGet.path).toBe('/healthz');
    expect(c.ports?.map((p) => p.name)).toContain(c.readinessProbe?.httpGet.port);
    expect(api.spec.template.spec.automountServiceAccountToken).toBe(false);
  });

  it('runs the worker as the ServiceAccount the Role is bound to', () => {
    const c = worker.spec.template.spec.containers[0]!;
    expect(c.args).toEqual(['--role', 'worker']);
    expect(worker.spec.template.spec.serviceAccountName).toBe('rollhook');
    expect(worker.spec.template.spec.automountServiceAccountToken).toBe(true);
    // Its one listener (metrics.port) answers /healthz; it has no API port to probe.
    expect(c.livenessProbe?.httpGet.path).toBe('/healthz');
    expect(c.ports?.find((p) => p.name === c.livenessProbe?.httpGet.port)?.containerPort).toBe(
      9464,
    );
    const binding = find(objects, 'RoleBinding', 'rollhook-deployer') as K8sObject & {
      subjects: { kind: string; name: string }[];
    };
    expect(binding.subjects).toContainEqual(
      expect.objectContaining({ kind: 'ServiceAccount', name: 'rollhook' }),
    );
  });

  it('uses one image for both roles, non-root with a read-only root filesystem and no capabilities', () => {
    const images = [api, worker].map((d) => d.spec.template.spec.containers[0]!.image);
    expect(new Set(images).size).toBe(1);
    expect(images[0]).toMatch(/^registry\.example\.com\/ops\/rollhook:\d+\.\d+\.\d+$/);
    for (const d of [api, worker]) {
      const c = d.spec.template.spec.containers[0]!;
      expect(c.securityContext.capabilities.drop).toEqual(['ALL']);
      expect(d.spec.template.spec.securityContext.runAsUser).not.toBe(0);
      // A read-only root needs a writable /tmp for anything that writes temp files.
      expect(c.volumeMounts.map((m) => m.mountPath)).toContain('/tmp');
    }
  });

  it('selects the API Pods from the Service and the PodDisruptionBudget, never the worker Pods', () => {
    const svc = find(objects, 'Service', 'rollhook-api') as K8sObject & {
      spec: { selector: Record<string, string>; ports: { targetPort: string }[] };
    };
    const pdb = find(objects, 'PodDisruptionBudget', 'rollhook-api') as K8sObject & {
      spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } };
    };
    const matches = (sel: Record<string, string>, labels: Record<string, string>): boolean =>
      Object.entries(sel).every(([k, v]) => labels[k] === v);
    expect(matches(svc.spec.selector, api.spec.template.metadata.labels)).toBe(true);
    expect(matches(svc.spec.selector, worker.spec.template.metadata.labels)).toBe(false);
    expect(matches(pdb.spec.selector.matchLabels, api.spec.template.metadata.labels)).toBe(true);
    expect(matches(pdb.spec.selector.matchLabels, worker.spec.template.metadata.labels)).toBe(
      false,
    );
    expect(pdb.spec.minAvailable).toBeLessThan(api.spec.replicas);
    expect(svc.spec.ports[0]?.targetPort).toBe('http');
  });

  it('mounts the generated ConfigMap, whose config is valid and reads every secret from the Secret', () => {
    const cm = objects.find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('rollhook-config'),
    ) as (K8sObject & { data: Record<string, string> }) | undefined;
    expect(cm).toBeDefined();
    for (const d of [api, worker]) {
      expect(d.spec.template.spec.volumes.map((v) => v.configMap?.name)).toContain(
        cm?.metadata.name,
      );
      const c = d.spec.template.spec.containers[0]!;
      expect(c.env).toContainEqual({ name: 'ROLLHOOK_CONFIG', value: '/etc/rollhook/config.yaml' });
      expect(c.envFrom).toEqual([{ secretRef: { name: 'rollhook' } }]);
    }
    const text = cm?.data['config.yaml'] ?? '';
    const config = parseConfig(text, 'k8s/base/config.yaml', fakeEnv(text));
    expect(config.server.port).toBe(8080);
    // Every variable the config reads is listed in the Secret template operators copy.
    const listed = readFileSync(join(EXAMPLE, 'secret.env.example'), 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z][A-Z0-9_]*=/.test(l))
      .map((l) => l.split('=')[0]);
    expect(listed.sort()).toEqual(Object.keys(fakeEnv(text)).sort());
  });
});

describe('server-side dry run on the test control plane', () => {
  it('accepts every object of the base, in a namespace enforcing the restricted Pod Security profile', () => {
    const ns = uniqueNamespace();
    const rendered = renderInto(BASE, ns);
    const res = dryRun(rendered);
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    // One "(server dry run)" line per object: nothing was skipped.
    expect(
      res.stdout
        .trim()
        .split('\n')
        .filter((l) => l.endsWith('(server dry run)')),
    ).toHaveLength(parse(rendered).length);
  });

  it('accepts every object of the example overlay, the binding in the target namespace included', () => {
    const objects = parse(render(EXAMPLE));
    expect(deployment.parse(find(objects, 'Deployment', 'rollhook-worker')).spec.replicas).toBe(2);
    const bindings = objects
      .filter((o) => o.kind === 'RoleBinding')
      .map((o) => o.metadata.namespace);
    expect(bindings.sort()).toEqual(['my-app', 'rollhook']);
    const config =
      (objects.find((o) => o.kind === 'ConfigMap') as K8sObject & { data: Record<string, string> })
        .data['config.yaml'] ?? '';
    expect(
      parseConfig(config, 'k8s/overlays/example/config.yaml', fakeEnv(config)).targets[0]
        ?.kubernetes.namespace,
    ).toBe('my-app');
    // Fresh namespaces in the shared test cluster, for rollhook's own and the target's.
    const own = uniqueNamespace();
    const targetNs = uniqueNamespace();
    const created = run(['--kubeconfig', kubeconfig, 'create', 'namespace', targetNs]);
    expect(created.stderr).toBe('');
    namespaces.push(targetNs);
    const res = dryRun(renameNamespaces(objects, { rollhook: own, 'my-app': targetNs }));
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    expect(res.stdout).toContain(
      `rolebinding.rbac.authorization.k8s.io/rollhook-deployer created (server dry run)`,
    );
  });

  it('fails on a field the apiserver does not know (the check can fail)', () => {
    const rendered = renderInto(BASE, uniqueNamespace()).replace(
      'revisionHistoryLimit: 5',
      'revisionHistoryLimit: 5\n  replica: 3',
    );
    const res = dryRun(rendered);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(/unknown field "spec.replica"/);
  });

  it('reports a Pod that breaks the restricted profile (the check can fail)', () => {
    const rendered = renderInto(BASE, uniqueNamespace()).replaceAll(
      'allowPrivilegeEscalation: false',
      'allowPrivilegeEscalation: true',
    );
    const res = dryRun(rendered);
    expect(res.stderr).toMatch(
      /would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false/,
    );
  });
});
