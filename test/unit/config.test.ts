import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.ts';
import { configPath, loadConfig, parseConfig } from '../../src/config/load.ts';

const valid = `
redis: { url: "\${REDIS_URL}" }
gitlab: { url: https://gitlab.example.com, token: "\${GITLAB_TOKEN}" }
targets:
  - name: my-project-prod
    gitlab:
      project: facile/my-project
      webhookSecret: "\${HOOK_SECRET}"
      refs: [master, "release/*"]
    kubernetes:
      namespace: prod
      deployment: my-project
      containers: { php-container: registry.example.com/facile/my-project/php-prod }
`;
const env = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  GITLAB_TOKEN: 'glpat-very-secret-value',
  HOOK_SECRET: 'hook-secret-value-1',
};

function problemsOf(text: string, e: NodeJS.ProcessEnv = env): ConfigError {
  try {
    parseConfig(text, '/etc/rollhook/config.yaml', e);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('parses a valid file, substitutes ${ENV} and applies the documented defaults', () => {
    const c = parseConfig(valid, 'x.yaml', env);
    const t = c.targets[0];
    expect(c.redis.url).toBe('redis://127.0.0.1:6379');
    expect(c.gitlab.token).toBe('glpat-very-secret-value');
    expect(t?.gitlab.webhookSecret).toBe('hook-secret-value-1');
    expect(t?.gitlab.sources).toEqual(['push', 'web', 'api', 'schedule', 'trigger', 'pipeline']);
    expect(t?.images.tag).toBe('prod-{sha}');
    expect(t?.images.promoteTo).toBe('prod');
    expect(t?.images.keepReleases).toBe(0);
    expect(c.server.bodyLimit).toBe(5 * 1024 * 1024);
    expect(t?.rollout.timeout).toBe(600_000);
  });

  it('lists every problem, each with its key path and the file, and never a secret value', () => {
    const bad = `
redis: { url: "http://not-redis" }
gitlab: { url: not-a-url, token: "\${GITLAB_TOKEN}" }
server: { port: 99999, bodyLimit: lots }
targets:
  - name: Bad_Name
    gitlab: { project: "not a path", webhookSecret: short, sources: [push, nonsense] }
    kubernetes: { namespace: prod, deployment: d, containers: { c: "registry.example.com/x:tag" } }
    unknownKey: 1
`;
    const err = problemsOf(bad);
    expect(err.file).toBe('/etc/rollhook/config.yaml');
    expect(err.message).toContain('/etc/rollhook/config.yaml');
    const keys = err.problems.map((p) => p.split(':')[0]);
    expect(keys).toEqual(
      expect.arrayContaining([
        'redis.url',
        'gitlab.url',
        'server.port',
        'server.bodyLimit',
        'targets.0.name',
        'targets.0.gitlab.project',
        'targets.0.gitlab.webhookSecret',
        'targets.0.gitlab.sources.1',
        'targets.0.kubernetes.containers.c',
        'targets.0.unknownKey',
      ]),
    );
    expect(err.message).not.toContain('glpat-very-secret-value');
    expect(err.message).not.toContain('short');
  });

  it('names the key whose environment variable is missing', () => {
    const err = problemsOf(valid, { REDIS_URL: 'redis://x:1', GITLAB_TOKEN: 't' });
    expect(err.problems).toContain(
      'targets.0.gitlab.webhookSecret: environment variable HOOK_SECRET is not set',
    );
  });

  it('rejects duplicate target names and ciTags without a repository', () => {
    const text = valid.replace(
      'targets:',
      'targets:\n  - { name: my-project-prod, gitlab: { project: 1, webhookSecret: aaaaaaaaaa }, kubernetes: { namespace: a, deployment: b, containers: { c: r.example.com/a } }, images: { ciTags: ["ci-{sha}"] } }',
    );
    const err = problemsOf(text);
    expect(err.problems).toContain(
      'targets.0.images.ciRepository: required when images.ciTags is set',
    );
    expect(err.problems).toContain('targets.1.name: duplicate of targets.0.name');
  });

  it('reports YAML syntax errors with the line, and unreadable files by path', () => {
    const err = problemsOf('targets: [\n  - a: b\n  - : :\n');
    expect(err.problems[0]).toMatch(/^YAML \w+ at line \d+/);
    const dir = mkdtempSync(join(tmpdir(), 'rh-config-'));
    expect(() => loadConfig(join(dir, 'missing.yaml'))).toThrow(/missing\.yaml[\s\S]*ENOENT/);
    writeFileSync(join(dir, 'ok.yaml'), valid);
    expect(loadConfig(join(dir, 'ok.yaml'), env).targets).toHaveLength(1);
  });

  it('takes the path from --config, then ROLLHOOK_CONFIG, else says how to give one', () => {
    expect(configPath(['--config', 'a.yaml'], { ROLLHOOK_CONFIG: 'b.yaml' })).toMatch(/\/a\.yaml$/);
    expect(configPath(['--config=c.yaml'], {})).toMatch(/\/c\.yaml$/);
    expect(configPath([], { ROLLHOOK_CONFIG: 'b.yaml' })).toMatch(/\/b\.yaml$/);
    expect(() => configPath([], {})).toThrow(/--config FILE or set ROLLHOOK_CONFIG/);
  });
});
