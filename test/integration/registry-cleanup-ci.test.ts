import { UnrecoverableError } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../src/config/schema.ts';
import type { CleanupCiJobData } from '../../src/queue/jobs.ts';
import { ImageRegistry } from '../../src/registry/index.ts';
import { makeCleanupCiProcessor } from '../../workers/cleanup-ci.ts';
import {
  pushRandomImage,
  tagImage,
  tagMap,
  uniqueRepo,
  startRegistry,
  type Credentials,
  type TestRegistry,
} from '../support/registry.ts';

let reg: TestRegistry;

beforeAll(async () => {
  reg = await startRegistry();
});
afterAll(async () => {
  await reg?.stop();
});

function configFor(ciRepository: string, ciTags: string[], user: Credentials): Config {
  return configSchema.parse({
    redis: { url: 'redis://127.0.0.1:9' },
    gitlab: { url: 'http://127.0.0.1:9', token: 'glpat-test-token' },
    registries: [
      { host: reg.host, url: reg.url, username: user.username, password: user.password },
    ],
    targets: [
      {
        name: 'app',
        gitlab: { project: 'group/app', webhookSecret: 'hook-secret-app' },
        kubernetes: {
          namespace: 'prod',
          deployment: 'app',
          containers: { app: `${reg.host}/group/app/php-prod` },
        },
        images: { ciTags, ciRepository },
      },
    ],
  });
}

const SHA = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';

function job(over: Partial<CleanupCiJobData> = {}): { id: string; data: CleanupCiJobData } {
  return {
    id: 'cleanup-ci-42',
    data: {
      target: 'app',
      pipelineId: 42,
      sha: SHA,
      ref: 'feature/Login',
      status: 'failed',
      correlationId: 'c-1',
      ...over,
    },
  };
}

describe('CI image cleanup job', () => {
  it("deletes the pipeline's CI tags and keeps the branch cache tag that shares the digest", async () => {
    const name = uniqueRepo('group/app/php-ci');
    const admin = reg.users.admin;
    const ciImage = await pushRandomImage(reg.url, admin, name, SHA, { mediaType: 'docker' });
    await tagImage(reg.url, admin, name, SHA, 'cache-feature-login');
    await tagImage(reg.url, admin, name, SHA, 'ci-feature-login-42');
    const otherPipeline = await pushRandomImage(
      reg.url,
      admin,
      name,
      'ffffffffffffffffffffffffffffffffffffffff',
    );
    const config = configFor(
      `${reg.host}/${name}`,
      ['{sha}', 'ci-{ref}-{pipeline}', 'ci-{shortSha}'],
      admin,
    );
    const process = makeCleanupCiProcessor({
      registry: new ImageRegistry(config.registries, { backoffMs: 1 }),
      config,
    });

    const result = await process(job());
    expect(result.outcome).toBe('done');
    expect(result.tags.map((t) => [t.tag, t.deleted])).toEqual([
      [SHA, true],
      ['ci-feature-login-42', true],
      ['ci-a1b2c3d4', false],
    ]);
    expect(await tagMap(reg.url, admin, name)).toEqual({
      'cache-feature-login': ciImage,
      ffffffffffffffffffffffffffffffffffffffff: otherPipeline,
    });

    // at-least-once delivery: a second run finds nothing to do
    const again = await process(job());
    expect(again.tags.every((t) => !t.deleted && t.method === 'absent')).toBe(true);
    expect(await tagMap(reg.url, admin, name)).toEqual({
      'cache-feature-login': ciImage,
      ffffffffffffffffffffffffffffffffffffffff: otherPipeline,
    });
  });

  it('without delete rights the job fails unrecoverably and the tags stay where they were', async () => {
    const name = uniqueRepo('group/app/php-ci');
    const digest = await pushRandomImage(reg.url, reg.users.admin, name, SHA);
    await tagImage(reg.url, reg.users.admin, name, SHA, 'cache-main');
    const config = configFor(`${reg.host}/${name}`, ['{sha}'], reg.users.pusher);
    const process = makeCleanupCiProcessor({
      registry: new ImageRegistry(config.registries, { backoffMs: 1 }),
      config,
    });
    const err = await process(job({ status: 'success' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect(String(err)).toContain('may not delete');
    expect(await tagMap(reg.url, reg.users.admin, name)).toEqual({
      [SHA]: digest,
      'cache-main': digest,
    });
  });

  it('skips running pipelines, unknown targets and targets without CI tags', async () => {
    const config = configFor(`${reg.host}/group/none`, ['{sha}'], reg.users.admin);
    const process = makeCleanupCiProcessor({
      registry: new ImageRegistry(config.registries),
      config,
    });
    expect(await process(job({ status: 'running' }))).toMatchObject({
      outcome: 'skipped',
      reason: expect.stringContaining('not final'),
    });
    expect(await process(job({ target: 'gone' }))).toMatchObject({
      outcome: 'skipped',
      reason: expect.stringContaining('not in the config'),
    });
    const bare = configFor(`${reg.host}/group/none`, [], reg.users.admin);
    expect(
      await makeCleanupCiProcessor({ registry: new ImageRegistry(bare.registries), config: bare })(
        job(),
      ),
    ).toMatchObject({ outcome: 'skipped' });
    await expect(
      process({ id: 'x', data: { ...job().data, sha: 'not a sha' } }),
    ).rejects.toBeInstanceOf(UnrecoverableError);
  });
});
