/**
 * Benchmark (not a test): requests and milliseconds for the deploy job's registry steps
 * (resolve prod-<sha>, promote to prod, delete the superseded digest) and for one CI tag
 * deletion, against the local distribution registry with token auth.
 * Run: node bench/promote.ts [iterations]. Writes bench/results/promote.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { ImageRegistry, type RequestStats } from '../src/registry/index.ts';
import { pushRandomImage, startRegistry, tagImage, uniqueRepo } from '../test/support/registry.ts';

process.env.LOG_SILENT ??= '1';
const iterations = Number(process.argv[2] ?? 30);

interface Sample {
  ms: number;
  registry: number;
  token: number;
}

function summary(samples: Sample[]) {
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const q = (p: number): number =>
    Number((ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] ?? 0).toFixed(2));
  return {
    runs: samples.length,
    msP50: q(0.5),
    msP95: q(0.95),
    msMax: q(1),
    registryRequests: [...new Set(samples.map((s) => s.registry))],
    tokenRequests: [...new Set(samples.map((s) => s.token))],
  };
}

const reg = await startRegistry();
const results: Record<string, unknown> = {};
try {
  const admin = reg.users.admin;
  const config = [
    {
      host: reg.host,
      url: reg.url,
      username: admin.username,
      password: admin.password,
      protectedTags: ['prod', 'latest', 'v*'],
    },
  ];
  const repoRef = (name: string): string => `${reg.host}/${name}`;

  /** One deploy's registry work; `fresh` = a new client (tokens fetched), as after a worker restart. */
  async function scenario(
    label: string,
    extraTags: number,
    fresh: boolean,
  ): Promise<{ samples: Sample[]; byStatus: RequestStats['byStatus'] }> {
    const name = uniqueRepo('bench/app');
    for (let i = 0; i < extraTags; i++) await pushRandomImage(reg.url, admin, name, `branch-${i}`);
    let shared = new ImageRegistry(config);
    await pushRandomImage(reg.url, admin, name, 'prod-0');
    await shared.promote(repoRef(name), 'prod-0', 'prod');
    const samples: Sample[] = [];
    let byStatus: RequestStats['byStatus'] = {};
    for (let i = 1; i <= iterations; i++) {
      await pushRandomImage(reg.url, admin, name, `prod-${i}`);
      const r = fresh ? new ImageRegistry(config) : shared;
      r.resetRequestStats();
      const t0 = performance.now();
      const digest = await r.digestOf(repoRef(name), `prod-${i}`);
      const promoted = await r.promote(repoRef(name), `prod-${i}`, 'prod');
      const cleaned = await r.deleteSuperseded(repoRef(name), promoted.previousDigest ?? '', {
        newDigest: digest ?? '',
        runningDigests: new Set(),
        keepReleases: 0,
        releaseTagPattern: 'prod-*',
      });
      const ms = performance.now() - t0;
      if (!cleaned.deleted)
        throw new Error(`${label}: expected a delete, got ${JSON.stringify(cleaned)}`);
      const s = r.requestStats();
      samples.push({ ms, registry: s.registry, token: s.token });
      byStatus = s.byStatus;
      if (!fresh) shared = r;
    }
    return { samples, byStatus };
  }

  for (const [label, extra, fresh] of [
    ['warm client, repository with prod + 1 release', 0, false],
    ['cold client (tokens fetched), repository with prod + 1 release', 0, true],
    ['warm client, repository with 20 other tags', 20, false],
  ] as const) {
    const { samples, byStatus } = await scenario(label, extra, fresh);
    results[label] = { ...summary(samples), lastRunByStatus: byStatus };
  }

  // CI cleanup: one tag that shares its digest with a cache tag (dummy-manifest method on 2.8).
  const ciName = uniqueRepo('bench/app-ci');
  const r = new ImageRegistry(config);
  const samples: Sample[] = [];
  for (let i = 0; i < iterations; i++) {
    await pushRandomImage(reg.url, admin, ciName, `ci-${i}`);
    await tagImage(reg.url, admin, ciName, `ci-${i}`, `cache-${i}`);
    r.resetRequestStats();
    const t0 = performance.now();
    await r.deleteTag(repoRef(ciName), `ci-${i}`);
    const s = r.requestStats();
    samples.push({ ms: performance.now() - t0, registry: s.registry, token: s.token });
  }
  results['deleteTag with a shared digest (warm client)'] = summary(samples);
} finally {
  await reg.stop();
}

const out = {
  what: 'registry steps of one deploy: digestOf(prod-<sha>) + promote(prod-<sha> -> prod) + deleteSuperseded(previous); and one CI deleteTag',
  registry: 'Debian docker-registry 2.8 (distribution), token auth, loopback',
  node: process.version,
  cpus: cpus().length,
  iterations,
  at: new Date().toISOString(),
  results,
};
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/promote.json', `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify(out, null, 2));
