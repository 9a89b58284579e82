import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, parseDocument } from 'yaml';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { configSchema } from '../../src/config/schema.ts';

/**
 * docker-compose.yml and docker-compose.override.yml.dist, checked as Compose reads them
 * (YAML merge keys resolved, `${VAR:-default}` interpolation) since no Docker engine runs
 * here: services, images, commands, env, volumes, health checks, start order, and that the
 * example config the compose file mounts fits the ports it maps and checks.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const read = (f: string): string => readFileSync(join(ROOT, f), 'utf8');

const healthcheck = z.strictObject({
  test: z.tuple([z.enum(['CMD', 'CMD-SHELL'])], z.string()),
  interval: z.string(),
  timeout: z.string(),
  retries: z.number().int().positive(),
  start_period: z.string().optional(),
});
const service = z.looseObject({
  image: z.string(),
  command: z.array(z.string()).optional(),
  environment: z.record(z.string(), z.string()).optional(),
  volumes: z.array(z.string()).optional(),
  ports: z.array(z.string()).optional(),
  healthcheck,
  depends_on: z
    .record(
      z.string(),
      z.object({
        condition: z.enum(['service_started', 'service_healthy', 'service_completed_successfully']),
      }),
    )
    .optional(),
});
const composeFile = z.looseObject({
  name: z.string(),
  services: z.record(z.string(), service),
  volumes: z.record(z.string(), z.null()),
});

/** What Compose sees with no variables set: in every value (comments aside) `${VAR:-default}` takes its default. */
function interpolate(value: unknown): unknown {
  if (typeof value === 'string') {
    return value.replace(
      /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
      (_m, name: string, def: string | undefined) => {
        if (def === undefined)
          throw new Error(
            `\${${name}} has no default: \`docker compose config\` would fail without it set`,
          );
        return def;
      },
    );
  }
  if (Array.isArray(value)) return value.map(interpolate);
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v)]));
  return value;
}
const compose = composeFile.parse(interpolate(parse(read('docker-compose.yml'), { merge: true })));
const services = compose.services;
const api = services.api!;
const worker = services.worker!;
const redis = services.redis!;
const registry = services.registry!;

/** Host and container side of a bind or volume mount `source:target[:mode]`. */
function mounts(s: z.infer<typeof service>): { source: string; target: string; mode?: string }[] {
  return (s.volumes ?? []).map((v) => {
    const [source = '', target = '', mode] = v.split(':');
    return { source, target, mode };
  });
}

/** The port a `node -e "fetch('http://127.0.0.1:PORT/…')"` health check calls. */
function checkedPort(s: z.infer<typeof service>): { port: number; path: string } {
  const m = /http:\/\/127\.0\.0\.1:(\d+)(\/[a-z]+)/.exec(s.healthcheck.test.join(' '));
  if (!m) throw new Error(`health check calls no local URL: ${s.healthcheck.test.join(' ')}`);
  return { port: Number(m[1]), path: m[2] ?? '' };
}

const defaults = configSchema.parse({
  redis: { url: 'redis://x' },
  gitlab: { url: 'https://gitlab.example.com', token: 't' },
  targets: [
    {
      name: 'a',
      gitlab: { project: 'g/a', webhookSecret: '12345678' },
      kubernetes: { namespace: 'a', deployment: 'a', containers: { a: 'r.example.com/g/a' } },
    },
  ],
});

describe('docker-compose.yml', () => {
  it('runs api, worker, Redis and a registry, and every variable has a default', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'redis', 'registry', 'worker']);
    expect(compose.name).toBe('rollhook');
  });

  it('builds one image from the Dockerfile runtime stage for api and worker, the command choosing the role', () => {
    expect(api.image).toBe(worker.image);
    for (const s of [api, worker]) expect(s.build).toEqual({ context: '.', target: 'runtime' });
    expect(read('Dockerfile')).toMatch(/^FROM \S+ AS runtime$/m);
    expect(api.command).toEqual(['--role', 'api']);
    expect(worker.command).toEqual(['--role', 'worker']);
  });

  it('starts api and worker only once Redis is healthy, and restarts them', () => {
    for (const s of [api, worker]) {
      expect(s.depends_on).toEqual({ redis: { condition: 'service_healthy' } });
      expect(s.restart).toBe('unless-stopped');
    }
  });

  it('mounts the config where ROLLHOOK_CONFIG points, read-only, with Redis and the kubeconfig from the environment', () => {
    for (const s of [api, worker]) {
      const env = s.environment ?? {};
      const config = mounts(s).find((m) => m.target === env.ROLLHOOK_CONFIG);
      expect(config).toMatchObject({ source: './rollhook.yaml', mode: 'ro' });
      expect(mounts(s).find((m) => m.target === env.KUBECONFIG)?.mode).toBe('ro');
      expect(env.REDIS_URL).toBe('redis://redis:6379');
      // Secrets come from .env, never from the compose file.
      expect(s.env_file).toEqual([{ path: '.env', required: false }]);
      expect(Object.keys(env).filter((k) => /TOKEN|SECRET|PASSWORD/.test(k))).toEqual([]);
      expect(s.read_only).toBe(true);
      expect(s.tmpfs).toEqual(['/tmp']);
    }
  });

  it('checks the API on its mapped port and the worker on its metrics listener, the ports the config defaults to', () => {
    const published = api.ports?.map((p) => Number(p.split(':').at(-1)));
    expect(checkedPort(api)).toEqual({ port: defaults.server.port, path: '/readyz' });
    expect(published).toEqual([defaults.server.port]);
    expect(checkedPort(worker)).toEqual({ port: defaults.metrics.port, path: '/healthz' });
    expect(worker.ports).toBeUndefined();
  });

  it('runs Redis with AOF persistence on a named volume, and noeviction (BullMQ loses jobs otherwise)', () => {
    const cmd = (redis.command ?? []).join(' ');
    expect(cmd).toContain('--appendonly yes');
    expect(cmd).toContain('--maxmemory-policy noeviction');
    expect(mounts(redis)).toEqual([{ source: 'redis-data', target: '/data', mode: undefined }]);
    expect(redis.healthcheck.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  it('runs a distribution registry with deletes enabled and its storage on a named volume', () => {
    expect(registry.image).toMatch(/^registry:2(\.|$)/);
    expect(registry.environment?.REGISTRY_STORAGE_DELETE_ENABLED).toBe('true');
    const storage = registry.environment?.REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY;
    expect(mounts(registry)).toEqual([
      { source: 'registry-data', target: storage, mode: undefined },
    ]);
    expect(registry.healthcheck.test.join(' ')).toContain('/v2/');
  });

  it('declares every named volume it mounts', () => {
    const named = Object.values(services)
      .flatMap((s) => mounts(s).map((m) => m.source))
      .filter((src) => !/^[./~]/.test(src));
    expect(named.sort()).toEqual(Object.keys(compose.volumes).sort());
  });

  it('fails the interpolation check on a variable without a default (the check can fail)', () => {
    expect(() => interpolate({ image: '${ROLLHOOK_IMAGE}' })).toThrow(/has no default/);
  });
});

describe('docs/examples/rollhook.yaml, the config the compose file mounts', () => {
  const text = read('docs/examples/rollhook.yaml');
  const env: Record<string, string> = { ...api.environment };
  for (const m of text.matchAll(/\$\{([A-Z0-9_]+)\}/g))
    env[m[1] ?? ''] ??= m[1]?.endsWith('_SHA256') ? 'b'.repeat(64) : 'x'.repeat(12);
  const config = parseConfig(text, 'docs/examples/rollhook.yaml', env);

  it('is valid and listens where compose maps and checks', () => {
    expect(config.server.port).toBe(checkedPort(api).port);
    expect(config.metrics.port).toBe(checkedPort(worker).port);
    expect(config.redis.url).toBe(api.environment?.REDIS_URL);
  });

  it('reaches the compose registry by its service name, under the host name images use', () => {
    const reg = config.registries[0];
    expect(reg?.url).toBe('http://registry:5000');
    for (const t of config.targets)
      for (const repo of Object.values(t.kubernetes.containers))
        expect(repo.startsWith(`${reg?.host}/`)).toBe(true);
  });
});

describe('docker-compose.override.yml.dist', () => {
  const doc = parseDocument(read('docker-compose.override.yml.dist'));
  const override = z
    .object({ services: z.record(z.string(), z.looseObject({})) })
    .parse(doc.toJS());

  it('is valid YAML that overrides only services the base defines', () => {
    expect(doc.errors).toEqual([]);
    for (const name of Object.keys(override.services))
      expect(Object.keys(services)).toContain(name);
  });

  it('is ignored by git once copied, so local settings stay local', () => {
    expect(read('.gitignore').split('\n')).toContain('docker-compose.override.yml');
  });
});

/**
 * The files loaded by compose-go, the library behind `docker compose config`: the Compose
 * schema, interpolation, override merging and consistency checks, without a Docker engine.
 * Built once from the Go module proxy by test/compose/build.sh (seconds) and cached.
 */
describe('docker compose config (compose-go)', () => {
  let bin: string;
  let dir: string;
  const project = z.looseObject({
    name: z.string(),
    services: z.record(
      z.string(),
      z.looseObject({
        environment: z.record(z.string(), z.string().nullable()).optional(),
        ports: z
          .array(
            z.looseObject({
              target: z.number(),
              published: z.string(),
              host_ip: z.string().optional(),
            }),
          )
          .optional(),
        volumes: z
          .array(z.looseObject({ type: z.string(), source: z.string(), target: z.string() }))
          .optional(),
      }),
    ),
    volumes: z.record(z.string(), z.unknown()),
  });

  function config(files: string[]): {
    status: number;
    stderr: string;
    project?: z.infer<typeof project>;
  } {
    // No variables from this machine: what a fresh checkout sees.
    const res = spawnSync(bin, files, {
      cwd: dir,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: dir },
      timeout: 30_000,
    });
    if (res.error) throw res.error;
    return {
      status: res.status ?? -1,
      stderr: res.stderr,
      ...(res.status === 0 ? { project: project.parse(JSON.parse(res.stdout)) } : {}),
    };
  }

  beforeAll(() => {
    const build = spawnSync('bash', [join(ROOT, 'test/compose/build.sh')], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    if (build.status !== 0)
      throw new Error(`test/compose/build.sh failed (needs Go 1.26+):\n${build.stderr}`);
    bin = build.stdout.trim().split('\n').at(-1) ?? '';
    // A copy, so the override (as a user would name it) never lands in the work tree.
    dir = mkdtempSync(join(tmpdir(), 'rollhook-compose-'));
    copyFileSync(join(ROOT, 'docker-compose.yml'), join(dir, 'docker-compose.yml'));
    copyFileSync(
      join(ROOT, 'docker-compose.override.yml.dist'),
      join(dir, 'docker-compose.override.yml'),
    );
  }, 320_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('accepts docker-compose.yml with no variable set', () => {
    const res = config(['docker-compose.yml']);
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    expect(Object.keys(res.project?.services ?? {}).sort()).toEqual([
      'api',
      'redis',
      'registry',
      'worker',
    ]);
    expect(Object.keys(res.project?.volumes ?? {}).sort()).toEqual(['redis-data', 'registry-data']);
    // `~` in the kubeconfig default resolves to the home directory.
    expect(
      res.project?.services.worker?.volumes?.find((v) => v.target === '/etc/rollhook/kubeconfig')
        ?.source,
    ).toBe(join(dir, '.kube/config'));
  });

  it('merges the override dist over it as docker-compose.override.yml', () => {
    const res = config(['docker-compose.yml', 'docker-compose.override.yml']);
    expect(res.stderr).toBe('');
    expect(res.project?.services.api?.environment?.LOG_LEVEL).toBe('debug');
    expect(res.project?.services.api?.environment?.REDIS_URL).toBe('redis://redis:6379');
    expect(res.project?.services.redis?.ports).toEqual([
      expect.objectContaining({ target: 6379, published: '6379', host_ip: '127.0.0.1' }),
    ]);
  });

  it('rejects a key the Compose schema does not know (the check can fail)', () => {
    writeFileSync(
      join(dir, 'bad.yml'),
      read('docker-compose.yml').replace(
        '    image: redis:',
        '    restart_policy: always\n    image: redis:',
      ),
    );
    const res = config(['bad.yml']);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(/restart_policy/);
  });
});
