import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.ts';

/**
 * The Dockerfile and .dockerignore, read as the builder reads them (no Docker engine runs
 * here): stages, layer order, user, health check, entrypoint; and that the runtime stage
 * holds everything `node src/main.ts` loads, with production dependencies only.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

interface Instruction {
  op: string;
  args: string;
}

/** Instructions with continuation lines joined and comments dropped. */
function instructions(source: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const line of source.split('\n')) {
    if (/^\s*#/.test(line) && pending === '') continue;
    if (/^\s*#/.test(line)) continue; // comments inside a continued instruction
    const joined = pending + line.replace(/\\\s*$/, ' ');
    if (/\\\s*$/.test(line)) {
      pending = joined;
      continue;
    }
    pending = '';
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(joined);
    if (m?.[1] && m[2] !== undefined) out.push({ op: m[1].toUpperCase(), args: m[2].trim() });
  }
  return out;
}

const all = instructions(text);
const args = Object.fromEntries(
  all.filter((i) => i.op === 'ARG').map((i) => i.args.split('=') as [string, string]),
);
const stages = (() => {
  const result: { name: string; from: string; body: Instruction[] }[] = [];
  for (const i of all) {
    if (i.op === 'FROM') {
      const m = /^(\S+)\s+AS\s+(\S+)$/i.exec(i.args);
      if (!m?.[1] || !m[2]) throw new Error(`FROM without a stage name: ${i.args}`);
      result.push({
        name: m[2],
        from: m[1].replace(/^\$\{(\w+)\}$/, (_x, a: string) => args[a] ?? ''),
        body: [],
      });
    } else result.at(-1)?.body.push(i);
  }
  return result;
})();
const deps = stages.find((s) => s.name === 'deps');
const runtime = stages.at(-1);
const pkg = z
  .object({
    dependencies: z.record(z.string(), z.string()),
    devDependencies: z.record(z.string(), z.string()),
    scripts: z.record(z.string(), z.string()),
    bin: z.record(z.string(), z.string()),
  })
  .parse(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')));

describe('Dockerfile', () => {
  it('builds in two stages on a current Node LTS image (even major, 24 or newer)', () => {
    expect(stages.map((s) => s.name)).toEqual(['deps', 'runtime']);
    for (const s of stages) {
      const major = Number(/^node:(\d+)-/.exec(s.from)?.[1]);
      expect(major).toBeGreaterThanOrEqual(24);
      expect(major % 2).toBe(0);
    }
  });

  it('copies the dependency manifests and runs npm ci for production before any source, so code changes reuse that layer', () => {
    const body = deps?.body ?? [];
    const copy = body.findIndex((i) => i.op === 'COPY');
    const ci = body.findIndex((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args));
    expect(body[copy]?.args.split(/\s+/).slice(0, 2)).toEqual([
      'package.json',
      'package-lock.json',
    ]);
    expect(ci).toBeGreaterThan(copy);
    expect(body[ci]?.args).toMatch(/--omit=dev/);
    // The deps stage sees nothing but the two manifests.
    expect(body.filter((i) => i.op === 'COPY')).toHaveLength(1);
  });

  it('puts the sources on top of the installed dependencies in the runtime stage, and no dev tooling', () => {
    const copies = (runtime?.body ?? []).filter((i) => i.op === 'COPY').map((i) => i.args);
    expect(copies[0]).toBe('--from=deps /app/node_modules ./node_modules');
    expect(copies.slice(1)).toEqual([
      'package.json ./',
      'src ./src',
      'workers ./workers',
      'bin ./bin',
    ]);
    expect(
      (runtime?.body ?? []).some((i) => i.op === 'RUN' && /npm (ci|install)/.test(i.args)),
    ).toBe(false);
  });

  it('runs as a numeric non-root user', () => {
    const user = (runtime?.body ?? []).filter((i) => i.op === 'USER').at(-1)?.args;
    expect(user).toMatch(/^[1-9]\d*(:\d+)?$/);
  });

  it('starts node src/main.ts (what `npm start` runs) with the role as the command', () => {
    const entry = runtime?.body.find((i) => i.op === 'ENTRYPOINT')?.args ?? '';
    const cmd = runtime?.body.find((i) => i.op === 'CMD')?.args ?? '';
    expect(JSON.parse(entry)).toEqual(['node', 'src/main.ts']);
    expect(pkg.scripts.start).toBe('node src/main.ts');
    expect(JSON.parse(cmd)).toEqual(['--role', 'all']);
  });

  it('exposes and health-checks the ports the config defaults to (API and worker listener)', () => {
    const d = configSchema.parse({
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
    const exposed = runtime?.body
      .find((i) => i.op === 'EXPOSE')
      ?.args.split(/\s+/)
      .map(Number);
    expect(exposed).toEqual([d.server.port, d.metrics.port]);
    expect(healthUrls()).toEqual([
      `http://127.0.0.1:${d.server.port}/healthz`,
      `http://127.0.0.1:${d.metrics.port}/healthz`,
    ]);
  });
});

/** ROLLHOOK_HEALTH_URLS as the runtime stage's ENV sets it. */
function healthUrls(): string[] {
  const env =
    runtime?.body.find((i) => i.op === 'ENV' && i.args.includes('ROLLHOOK_HEALTH_URLS'))?.args ??
    '';
  return (/ROLLHOOK_HEALTH_URLS="([^"]*)"/.exec(env)?.[1] ?? '').split(' ');
}

describe('the HEALTHCHECK command, run as the container would run it', () => {
  const healthcheck = all.find((i) => i.op === 'HEALTHCHECK')?.args ?? '';
  const command = z
    .tuple([z.literal('node'), z.literal('-e'), z.string()])
    .parse(JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD ') + 4)));
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  async function serve(status: number): Promise<string> {
    const s = createServer((_req, res) => res.writeHead(status).end());
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const addr = s.address();
    if (!addr || typeof addr !== 'object') throw new Error('no address');
    return `http://127.0.0.1:${addr.port}/healthz`;
  }
  async function exitCode(urls: string[]): Promise<number | null> {
    const child = spawn(process.execPath, ['-e', command[2]], {
      env: { PATH: process.env.PATH, ROLLHOOK_HEALTH_URLS: urls.join(' ') },
      stdio: 'ignore',
    });
    return new Promise((r) => child.once('exit', (code) => r(code)));
  }

  it('is healthy when one of the listeners answers 2xx (a worker has no API port, an API no worker port)', async () => {
    expect(await exitCode(['http://127.0.0.1:1/healthz', await serve(200)])).toBe(0);
  });

  it('is unhealthy when no listener answers, or one answers 5xx', async () => {
    expect(await exitCode(['http://127.0.0.1:1/healthz'])).toBe(1);
    expect(await exitCode([await serve(503)])).toBe(1);
  });
});

describe('what the runtime stage holds is what node src/main.ts loads', () => {
  const copied = ['src', 'workers', 'bin', 'package.json'];
  const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  /** .dockerignore's verdict for a path, for the plain patterns it uses (`*`, `!dir/`, `name`). */
  function sentToBuilder(path: string): boolean {
    let included = true;
    const top = path.split('/')[0];
    for (const rule of ignore) {
      const negate = rule.startsWith('!');
      const pattern = rule.replace(/^!/, '').replace(/\/$/, '');
      if (pattern === '*' || pattern === top || pattern === path) included = negate;
    }
    return included;
  }

  /** Every module reachable from the entry point: local files and bare package names, type-only imports skipped. */
  function importGraph(entry: string): { files: Set<string>; packages: Set<string> } {
    const files = new Set<string>();
    const packages = new Set<string>();
    const queue = [entry];
    const re =
      /^\s*(?:import|export)\s+(?!type\s)(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;
    while (queue.length > 0) {
      const file = queue.pop() ?? '';
      if (files.has(file)) continue;
      files.add(file);
      for (const m of readFileSync(file, 'utf8').matchAll(re)) {
        const spec = m[1] ?? m[2] ?? '';
        if (spec.startsWith('.')) {
          const target = resolve(dirname(file), spec);
          if (!existsSync(target))
            throw new Error(`${relative(ROOT, file)} imports ${spec}, which does not exist`);
          queue.push(target);
        } else if (!spec.startsWith('node:') && !builtinModules.includes(spec)) {
          packages.add(
            spec.startsWith('@')
              ? spec.split('/').slice(0, 2).join('/')
              : (spec.split('/')[0] ?? spec),
          );
        }
      }
    }
    return { files, packages };
  }

  // The service, and the CLI that package.json's bin names.
  const entries = ['src/main.ts', ...Object.values(pkg.bin)];
  const graphs = entries.map((e) => importGraph(join(ROOT, e)));
  const graph = {
    files: new Set(graphs.flatMap((g) => [...g.files])),
    packages: new Set(graphs.flatMap((g) => [...g.packages])),
  };

  it('copies every local module the service imports, and the builder receives it', () => {
    expect(graph.files.size).toBeGreaterThan(10);
    for (const f of graph.files) {
      const rel = relative(ROOT, f);
      expect(copied).toContain(rel.split('/')[0]);
      expect(sentToBuilder(rel)).toBe(true);
    }
  });

  it('imports only production dependencies, which npm ci --omit=dev installs', () => {
    expect(graph.packages.size).toBeGreaterThan(3);
    for (const p of graph.packages)
      expect(Object.keys(pkg.dependencies), `${p} is imported at run time`).toContain(p);
  });

  it('sends the builder neither secrets, local state, node_modules nor git history', () => {
    for (const p of ['package.json', 'package-lock.json', 'src/main.ts', 'workers/start.ts'])
      expect(sentToBuilder(p)).toBe(true);
    for (const p of [
      '.env',
      '.sandbox/env.json',
      'node_modules/express/package.json',
      '.git/config',
      'docker-compose.override.yml',
      'test/unit/x.test.ts',
    ]) {
      expect(sentToBuilder(p), p).toBe(false);
    }
  });

  it('finds a devDependency imported at run time (the check can fail)', () => {
    // This test file imports vitest, a devDependency: the same walk reports it.
    const offending = [...importGraph(join(ROOT, 'test/unit/dockerfile.test.ts')).packages].filter(
      (p) => !(p in pkg.dependencies),
    );
    expect(offending).toContain('vitest');
    expect(pkg.devDependencies).toHaveProperty('vitest');
  });
});
