import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryCredentials } from '../../src/config/schema.ts';
import {
  ImageRegistry,
  ManifestNotFoundError,
  ProtectedTagError,
  RegistryAuthError,
  RegistryPermissionError,
  RegistryRequestError,
  RegistryUnavailableError,
  UnsupportedMediaTypeError,
  isRetryable,
  type DeleteSupersededContext,
} from '../../src/registry/index.ts';
import { startFaultProxy, type Fault, type FaultProxy } from '../support/fault-proxy.ts';
import {
  pushRandomImage,
  removeTagOnly,
  resolve,
  tagImage,
  tagMap,
  uniqueRepo,
  type Credentials,
  type ImageKind,
  type TestRegistry,
  startRegistry,
  OCI_MANIFEST,
} from '../support/registry.ts';

let reg: TestRegistry;
let proxy: FaultProxy;
let admin: Credentials;

beforeAll(async () => {
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.url);
  admin = reg.users.admin;
});

afterAll(async () => {
  await proxy?.stop();
  await reg?.stop();
});

function creds(user: Credentials, via: 'direct' | 'proxy' = 'direct'): RegistryCredentials {
  const target = via === 'proxy' ? proxy : reg;
  return {
    host: target.host,
    url: target.url,
    username: user.username,
    password: user.password,
    protectedTags: ['prod', 'latest', 'v*'],
  };
}

/** A client with fast retries, so fault tests do not wait on real backoff. */
function client(
  user: Credentials = admin,
  via: 'direct' | 'proxy' = 'direct',
  extra: { now?: () => number } = {},
): ImageRegistry {
  return new ImageRegistry([creds(user, via)], { backoffMs: 1, maxBackoffMs: 5, ...extra });
}

function ref(name: string, via: 'direct' | 'proxy' = 'direct'): string {
  return `${via === 'proxy' ? proxy.host : reg.host}/${name}`;
}

function ctx(
  newDigest: string,
  over: Partial<DeleteSupersededContext> = {},
): DeleteSupersededContext {
  return {
    newDigest,
    runningDigests: new Set(),
    keepReleases: 0,
    releaseTagPattern: 'prod-*',
    ...over,
  };
}

/** The deploy job's registry steps: push prod-<sha>, promote to prod, clean the superseded digest. */
async function release(
  r: ImageRegistry,
  name: string,
  sha: string,
  kind: ImageKind = 'oci',
  created?: string,
) {
  const digest = await pushRandomImage(reg.url, admin, name, `prod-${sha}`, {
    mediaType: kind,
    ...(created ? { created } : {}),
  });
  const promoted = await r.promote(ref(name), `prod-${sha}`, 'prod');
  return { digest, promoted };
}

describe('promote', () => {
  it.each<ImageKind>(['oci', 'docker', 'oci-index', 'docker-list'])(
    'copies a %s manifest to a prod tag that does not exist yet',
    async (kind) => {
      const name = uniqueRepo();
      const r = client();
      const digest = await pushRandomImage(reg.url, admin, name, 'prod-aaa', { mediaType: kind });
      const result = await r.promote(ref(name), 'prod-aaa', 'prod');
      expect(result).toEqual({ previousDigest: null, newDigest: digest, changed: true });
      expect(await r.deleteSuperseded(ref(name), result.previousDigest, ctx(digest))).toMatchObject(
        { deleted: false },
      );
      expect(await tagMap(reg.url, admin, name)).toEqual({ prod: digest, 'prod-aaa': digest });
    },
  );

  it('moves prod from the previous release and reports it; repeating changes nothing', async () => {
    const name = uniqueRepo();
    const r = client();
    const first = await release(r, name, 'aaa');
    const second = await release(r, name, 'bbb', 'docker');
    expect(second.promoted).toEqual({
      previousDigest: first.digest,
      newDigest: second.digest,
      changed: true,
    });
    r.resetRequestStats();
    expect(await r.promote(ref(name), 'prod-bbb', 'prod')).toEqual({
      previousDigest: second.digest,
      newDigest: second.digest,
      changed: false,
    });
    expect(Object.keys(r.requestStats().byStatus).some((k) => k.includes('PUT'))).toBe(false);
    expect(await tagMap(reg.url, admin, name)).toEqual({
      prod: second.digest,
      'prod-aaa': first.digest,
      'prod-bbb': second.digest,
    });
  });

  it('fails with ManifestNotFoundError for a missing source tag and leaves prod alone', async () => {
    const name = uniqueRepo();
    const r = client();
    const first = await release(r, name, 'aaa');
    await expect(r.promote(ref(name), 'prod-missing', 'prod')).rejects.toBeInstanceOf(
      ManifestNotFoundError,
    );
    expect(await resolve(reg.url, admin, name, 'prod')).toBe(first.digest);
  });

  it('digestOf answers null for an absent tag', async () => {
    const name = uniqueRepo();
    await pushRandomImage(reg.url, admin, name, 'prod-aaa');
    expect(await client().digestOf(ref(name), 'nope')).toBeNull();
  });
});

describe('tags list', () => {
  // distribution 2.8.2 answers every tag at once and ignores n/last; GitLab's registry and
  // Harbor page. The proxy answers the pages here as such a registry would.
  it('follows Link pages, and the inventory behind deleteSuperseded sees tags on the last page', async () => {
    const name = uniqueRepo();
    const a = await release(client(), name, 'aaa');
    await tagImage(reg.url, admin, name, 'prod-aaa', 'v9');
    const b = await release(client(), name, 'bbb');
    const page = (tags: string[], next?: string): Fault => ({
      kind: 'status',
      status: 200,
      body: JSON.stringify({ name, tags }),
      headers: next ? { link: `</v2/${name}/tags/list?last=${next}&n=2>; rel="next"` } : {},
    });
    const addPages = (): void => {
      proxy.add({
        method: 'GET',
        path: /\/tags\/list\?n=2$/,
        times: 1,
        fault: page(['prod', 'prod-aaa'], 'prod-aaa'),
      });
      proxy.add({
        method: 'GET',
        path: /\/tags\/list\?last=prod-aaa&n=2$/,
        times: 1,
        fault: page(['prod-bbb', 'v9'], 'v9'),
      });
      proxy.add({ method: 'GET', path: /\/tags\/list\?last=v9&n=2$/, times: 1, fault: page([]) });
    };
    const r = new ImageRegistry([creds(admin, 'proxy')], { tagPageSize: 2 });
    addPages();
    expect(await r.client.listTags(ref(name, 'proxy'))).toEqual([
      'prod',
      'prod-aaa',
      'prod-bbb',
      'v9',
    ]);
    addPages();
    expect(await r.deleteSuperseded(ref(name, 'proxy'), a.digest, ctx(b.digest))).toMatchObject({
      deleted: false,
      rule: 'protected-tag',
      reason: expect.stringContaining('v9'),
    });
    proxy.clear();
    expect(await resolve(reg.url, admin, name, 'prod-aaa')).toBe(a.digest);
  });
});

describe('deleteSuperseded', () => {
  it('deletes the digest prod pointed at before, with its release tag, and no other tag', async () => {
    const name = uniqueRepo();
    const r = client();
    const a = await release(r, name, 'aaa');
    const other = await pushRandomImage(reg.url, admin, name, 'feature-x');
    const b = await release(r, name, 'bbb');
    const result = await r.deleteSuperseded(
      ref(name),
      b.promoted.previousDigest ?? '',
      ctx(b.digest),
    );
    expect(result).toMatchObject({ deleted: true, removedTags: ['prod-aaa'] });
    expect(await resolve(reg.url, admin, name, a.digest)).toBeNull();
    expect(await tagMap(reg.url, admin, name)).toEqual({
      prod: b.digest,
      'prod-bbb': b.digest,
      'feature-x': other,
    });
    // idempotent: the job may run again after a crash
    expect(await r.deleteSuperseded(ref(name), a.digest, ctx(b.digest))).toMatchObject({
      deleted: false,
    });
    expect(await tagMap(reg.url, admin, name)).toEqual({
      prod: b.digest,
      'prod-bbb': b.digest,
      'feature-x': other,
    });
  });

  it('skips when the digests match (same image rebuilt under a new sha)', async () => {
    const name = uniqueRepo();
    const r = client();
    const a = await release(r, name, 'aaa');
    await tagImage(reg.url, admin, name, 'prod-aaa', 'prod-bbb');
    const b = await r.promote(ref(name), 'prod-bbb', 'prod');
    expect(b).toEqual({ previousDigest: a.digest, newDigest: a.digest, changed: false });
    expect(await r.deleteSuperseded(ref(name), a.digest, ctx(a.digest))).toMatchObject({
      deleted: false,
      rule: 'same-digest',
    });
    expect(await tagMap(reg.url, admin, name)).toEqual({
      prod: a.digest,
      'prod-aaa': a.digest,
      'prod-bbb': a.digest,
    });
  });

  it.each(['v1.2.0', 'latest'])(
    'refuses when protected tag %s shares the old digest',
    async (protectedTag) => {
      const name = uniqueRepo();
      const r = client();
      const a = await release(r, name, 'aaa');
      await tagImage(reg.url, admin, name, 'prod-aaa', protectedTag);
      const b = await release(r, name, 'bbb');
      const result = await r.deleteSuperseded(ref(name), a.digest, ctx(b.digest));
      expect(result).toMatchObject({ deleted: false, rule: 'protected-tag' });
      expect(result.reason).toContain(protectedTag);
      expect(await tagMap(reg.url, admin, name)).toEqual({
        prod: b.digest,
        'prod-aaa': a.digest,
        'prod-bbb': b.digest,
        [protectedTag]: a.digest,
      });
    },
  );

  it('honours protected tags passed by the caller on top of the configured ones', async () => {
    const name = uniqueRepo();
    const r = client();
    const a = await release(r, name, 'aaa');
    await tagImage(reg.url, admin, name, 'prod-aaa', 'stable-2024');
    const b = await release(r, name, 'bbb');
    expect(
      await r.deleteSuperseded(ref(name), a.digest, ctx(b.digest, { protectedTags: ['stable-*'] })),
    ).toMatchObject({ deleted: false, rule: 'protected-tag' });
    expect(await resolve(reg.url, admin, name, 'stable-2024')).toBe(a.digest);
  });

  it('re-reads protected tags right before the delete: a rollback that moved prod back meanwhile keeps the digest', async () => {
    const name = uniqueRepo();
    const a = await release(client(), name, 'aaa');
    const b = await release(client(), name, 'bbb');
    const r = client(admin, 'proxy');
    // The inventory reads prod once (still b); the second read, just before the delete, sees a
    // rollback that pointed prod back at a in between.
    proxy.add({
      method: 'HEAD',
      path: /\/manifests\/prod$/,
      withToken: true,
      skip: 1,
      times: 1,
      fault: {
        kind: 'before',
        run: async () => void (await tagImage(reg.url, admin, name, 'prod-aaa', 'prod')),
      },
    });
    const result = await r.deleteSuperseded(ref(name, 'proxy'), a.digest, ctx(b.digest));
    proxy.clear();
    expect(result).toMatchObject({
      deleted: false,
      rule: 'protected-tag',
      reason: expect.stringContaining('now points'),
    });
    expect(await tagMap(reg.url, admin, name)).toEqual({
      prod: a.digest,
      'prod-aaa': a.digest,
      'prod-bbb': b.digest,
    });
  });

  it('refuses a digest a live Deployment still runs', async () => {
    const name = uniqueRepo();
    const r = client();
    const a = await release(r, name, 'aaa');
    const b = await release(r, name, 'bbb');
    expect(
      await r.deleteSuperseded(
        ref(name),
        a.digest,
        ctx(b.digest, { runningDigests: new Set([a.digest]) }),
      ),
    ).toMatchObject({ deleted: false, rule: 'running' });
    expect(await resolve(reg.url, admin, name, 'prod-aaa')).toBe(a.digest);
  });

  it('refuses an index whose platform manifest a live Deployment runs, and a manifest inside a tagged index', async () => {
    const name = uniqueRepo();
    const r = client();
    const a = await release(r, name, 'aaa', 'oci-index');
    const b = await release(r, name, 'bbb');
    const index = await r.client.getManifest(ref(name), a.digest);
    const child = index.body.manifests?.[0]?.digest ?? '';
    expect(
      await r.deleteSuperseded(
        ref(name),
        a.digest,
        ctx(b.digest, { runningDigests: new Set([child]) }),
      ),
    ).toMatchObject({ deleted: false, rule: 'running' });
    expect(await r.deleteSuperseded(ref(name), child, ctx(b.digest))).toMatchObject({
      deleted: false,
      rule: 'referenced-by-index',
    });
    expect(await resolve(reg.url, admin, name, child)).toBe(child);
    expect(await resolve(reg.url, admin, name, 'prod-aaa')).toBe(a.digest);
  });

  it('keeps the newest keepReleases releases for rollback and prunes older ones', async () => {
    const name = uniqueRepo();
    const r = client();
    const rel1 = await release(r, name, 'r1', 'oci', '2026-01-01T00:00:00Z');
    const rel2 = await release(r, name, 'r2', 'docker', '2026-01-02T00:00:00Z');
    const keep = ctx(rel2.digest, { keepReleases: 1 });
    expect(await r.deleteSuperseded(ref(name), rel1.digest, keep)).toMatchObject({
      deleted: false,
      rule: 'retention',
    });
    const rel3 = await release(r, name, 'r3', 'oci-index', '2026-01-03T00:00:00Z');
    const keep3 = ctx(rel3.digest, { keepReleases: 1 });
    expect(await r.deleteSuperseded(ref(name), rel2.digest, keep3)).toMatchObject({
      deleted: false,
      rule: 'retention',
    });
    const pruned = await r.pruneReleases(ref(name), keep3);
    expect(pruned).toEqual([expect.objectContaining({ deleted: true, removedTags: ['prod-r1'] })]);
    expect(await tagMap(reg.url, admin, name)).toEqual({
      prod: rel3.digest,
      'prod-r2': rel2.digest,
      'prod-r3': rel3.digest,
    });
    expect(await r.pruneReleases(ref(name), keep3)).toEqual([]);
    // with keepReleases 0, as in the original workflow, the previous release goes
    expect(await r.deleteSuperseded(ref(name), rel2.digest, ctx(rel3.digest))).toMatchObject({
      deleted: true,
    });
    expect(await tagMap(reg.url, admin, name)).toEqual({
      prod: rel3.digest,
      'prod-r3': rel3.digest,
    });
  });
});

describe('deleteTag', () => {
  it('removes only the CI tag when the branch cache tag shares its digest', async () => {
    const name = uniqueRepo('group/app-ci');
    const r = client();
    const digest = await pushRandomImage(reg.url, admin, name, 'ci-abc123', {
      mediaType: 'docker',
    });
    await tagImage(reg.url, admin, name, 'ci-abc123', 'cache-main');
    const unrelated = await pushRandomImage(reg.url, admin, name, 'ci-def456');
    const result = await r.deleteTag(ref(name), 'ci-abc123');
    expect(result).toMatchObject({ deleted: true, method: 'dummy-manifest' });
    expect(await tagMap(reg.url, admin, name)).toEqual({
      'cache-main': digest,
      'ci-def456': unrelated,
    });
    expect(await resolve(reg.url, admin, name, digest)).toBe(digest);
    expect(await r.deleteTag(ref(name), 'ci-abc123')).toMatchObject({
      deleted: false,
      method: 'absent',
    });
  });

  it("uses the registry's delete-by-tag where it answers for it (an OCI 1.1 registry, emulated)", async () => {
    const name = uniqueRepo('group/app-ci');
    const digest = await pushRandomImage(reg.url, admin, name, 'ci-abc123');
    await tagImage(reg.url, admin, name, 'ci-abc123', 'cache-main');
    const r = client(admin, 'proxy');
    proxy.add({
      method: 'DELETE',
      path: /\/manifests\/ci-abc123$/,
      withToken: true,
      times: 1,
      fault: {
        kind: 'status',
        status: 202,
        run: () => removeTagOnly(reg.url, admin, name, 'ci-abc123'),
      },
    });
    const seenBefore = proxy.seen.length;
    expect(await r.deleteTag(ref(name, 'proxy'), 'ci-abc123')).toMatchObject({
      deleted: true,
      method: 'delete-by-tag',
    });
    expect(proxy.seen.slice(seenBefore).some((s) => s.method === 'PUT')).toBe(false);
    expect(await tagMap(reg.url, admin, name)).toEqual({ 'cache-main': digest });
  });

  it('falls back to the dummy manifest when a registry says 202 to delete-by-tag but keeps the tag', async () => {
    const name = uniqueRepo('group/app-ci');
    const digest = await pushRandomImage(reg.url, admin, name, 'ci-abc123');
    await tagImage(reg.url, admin, name, 'ci-abc123', 'cache-main');
    const r = client(admin, 'proxy');
    proxy.add({
      method: 'DELETE',
      path: /\/manifests\/ci-abc123$/,
      withToken: true,
      times: 1,
      fault: { kind: 'status', status: 202 },
    });
    expect(await r.deleteTag(ref(name, 'proxy'), 'ci-abc123')).toMatchObject({
      deleted: true,
      method: 'dummy-manifest',
    });
    expect(await tagMap(reg.url, admin, name)).toEqual({ 'cache-main': digest });
  });

  it('never deletes a protected tag', async () => {
    const name = uniqueRepo();
    const digest = await pushRandomImage(reg.url, admin, name, 'latest');
    await expect(client().deleteTag(ref(name), 'latest')).rejects.toBeInstanceOf(ProtectedTagError);
    expect(await resolve(reg.url, admin, name, 'latest')).toBe(digest);
  });
});

describe('permissions', () => {
  it('a user without delete rights gets a clear RegistryPermissionError and nothing changes', async () => {
    const name = uniqueRepo();
    const adminClient = client();
    const a = await release(adminClient, name, 'aaa');
    await tagImage(reg.url, admin, name, 'prod-aaa', 'cache-main');
    const pusher = client(reg.users.pusher);
    const b = await pushRandomImage(reg.url, admin, name, 'prod-bbb');
    // pull + push is enough to promote
    expect(await pusher.promote(ref(name), 'prod-bbb', 'prod')).toMatchObject({
      previousDigest: a.digest,
      newDigest: b,
      changed: true,
    });
    const before = await tagMap(reg.url, admin, name);

    const refused = await pusher
      .deleteSuperseded(ref(name), a.digest, ctx(b))
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RegistryPermissionError);
    expect(refused).toMatchObject({
      action: 'delete',
      repository: name,
      username: reg.users.pusher.username,
    });
    expect(isRetryable(refused)).toBe(false);
    expect(String(refused)).not.toContain(reg.users.pusher.password);

    const tagRefused = await pusher.deleteTag(ref(name), 'prod-aaa').catch((e: unknown) => e);
    expect(tagRefused).toBeInstanceOf(RegistryPermissionError);
    expect(await tagMap(reg.url, admin, name)).toEqual(before);
  });

  it('a wrong password is a RegistryAuthError naming the user, without the password', async () => {
    const name = uniqueRepo();
    await pushRandomImage(reg.url, admin, name, 'prod-aaa');
    const bad = { username: admin.username, password: 'wrong-password-1234' };
    const err = await client(bad)
      .digestOf(ref(name), 'prod-aaa')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryAuthError);
    expect(String(err)).toContain(admin.username);
    expect(String(err)).not.toContain('wrong-password-1234');
  });
});

describe('faults between rollhook and the registry', () => {
  it('a token that expires mid-run is replaced once, and the run goes on', async () => {
    const name = uniqueRepo();
    const r = client(admin, 'proxy');
    const a = await pushRandomImage(reg.url, admin, name, 'prod-aaa');
    expect(await r.digestOf(ref(name, 'proxy'), 'prod-aaa')).toBe(a);
    const issued = reg.tokenServer.issued();
    proxy.add({
      method: 'GET',
      withToken: true,
      path: /\/manifests\/prod-aaa$/,
      times: 1,
      fault: { kind: 'invalid-token' },
    });
    expect(await r.promote(ref(name, 'proxy'), 'prod-aaa', 'prod')).toMatchObject({
      newDigest: a,
      changed: true,
    });
    expect(reg.tokenServer.issued() - issued).toBe(2); // the replaced pull token, and the push token
    expect(r.requestStats().byStatus['registry GET 401']).toBe(1);
    expect(await resolve(reg.url, admin, name, 'prod')).toBe(a);
  });

  it('a token past its expires_in is renewed before use, without a 401', async () => {
    const name = uniqueRepo();
    let clock = Date.now();
    const r = client(admin, 'direct', { now: () => clock });
    const a = await pushRandomImage(reg.url, admin, name, 'prod-aaa');
    await r.digestOf(ref(name), 'prod-aaa');
    const issued = reg.tokenServer.issued();
    await r.digestOf(ref(name), 'prod-aaa');
    expect(reg.tokenServer.issued()).toBe(issued);
    clock += 301_000; // past the token server's expires_in of 300 s
    r.resetRequestStats();
    expect(await r.digestOf(ref(name), 'prod-aaa')).toBe(a);
    expect(reg.tokenServer.issued()).toBe(issued + 1);
    expect(r.requestStats().byStatus['registry HEAD 401']).toBeUndefined();
  });

  it('a fresh token the registry refuses is a RegistryAuthError, not a loop', async () => {
    const name = uniqueRepo();
    await pushRandomImage(reg.url, admin, name, 'prod-aaa');
    const r = client();
    reg.tokenServer.issueExpired(1);
    const err = await r.digestOf(ref(name), 'prod-aaa').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryAuthError);
    expect(String(err)).toContain('invalid_token');
    expect(r.requestStats().registry).toBe(2);
  });

  it('a registry answering 500 then 202 on the delete: retried, deleted', async () => {
    const name = uniqueRepo();
    const r = client(admin, 'proxy');
    const a = await release(client(), name, 'aaa');
    const b = await release(client(), name, 'bbb');
    proxy.add({
      method: 'DELETE',
      withToken: true,
      path: new RegExp(`/manifests/${a.digest}$`),
      times: 1,
      fault: { kind: 'status', status: 500 },
    });
    const result = await r.deleteSuperseded(ref(name, 'proxy'), a.digest, ctx(b.digest));
    expect(result).toMatchObject({ deleted: true });
    expect(r.requestStats().byStatus['registry DELETE 500']).toBe(1);
    expect(r.requestStats().byStatus['registry DELETE 202']).toBe(1);
    expect(await tagMap(reg.url, admin, name)).toEqual({ prod: b.digest, 'prod-bbb': b.digest });
  });

  it('a delete that succeeded behind a 500 is found already gone on retry, not an error', async () => {
    const name = uniqueRepo();
    const r = client(admin, 'proxy');
    const a = await release(client(), name, 'aaa');
    const b = await release(client(), name, 'bbb');
    proxy.add({
      method: 'DELETE',
      path: new RegExp(`/manifests/${a.digest}$`),
      times: 1,
      withToken: true,
      fault: { kind: 'forward-then-status', status: 500 },
    });
    expect(await r.deleteSuperseded(ref(name, 'proxy'), a.digest, ctx(b.digest))).toMatchObject({
      deleted: false,
      reason: expect.stringContaining('already gone'),
    });
    expect(await resolve(reg.url, admin, name, a.digest)).toBeNull();
    expect(await tagMap(reg.url, admin, name)).toEqual({ prod: b.digest, 'prod-bbb': b.digest });
  });

  it('a registry that stays down: RegistryUnavailableError after the retries, retryable, nothing deleted', async () => {
    const name = uniqueRepo();
    const r = client(admin, 'proxy');
    const a = await release(client(), name, 'aaa');
    const b = await release(client(), name, 'bbb');
    proxy.add({
      method: 'DELETE',
      path: new RegExp(`/manifests/${a.digest}$`),
      times: 10,
      fault: { kind: 'status', status: 503 },
    });
    const err = await r
      .deleteSuperseded(ref(name, 'proxy'), a.digest, ctx(b.digest))
      .catch((e: unknown) => e);
    proxy.clear();
    expect(err).toBeInstanceOf(RegistryUnavailableError);
    expect(err).toMatchObject({ status: 503, attempts: 4 });
    expect(isRetryable(err)).toBe(true);
    expect(await resolve(reg.url, admin, name, 'prod-aaa')).toBe(a.digest);
  });

  it('429 and a dropped connection are retried; a 4xx is not', async () => {
    const name = uniqueRepo();
    const r = client(admin, 'proxy');
    const a = await pushRandomImage(reg.url, admin, name, 'prod-aaa');
    proxy.add({
      method: 'HEAD',
      path: /\/manifests\/prod$/,
      times: 1,
      fault: { kind: 'status', status: 429, headers: { 'retry-after': '0' } },
    });
    proxy.add({
      method: 'GET',
      path: /\/manifests\/prod-aaa$/,
      times: 1,
      fault: { kind: 'reset' },
    });
    expect(await r.promote(ref(name, 'proxy'), 'prod-aaa', 'prod')).toMatchObject({
      newDigest: a,
      changed: true,
    });
    expect(r.requestStats().byStatus['registry GET network-error']).toBe(1);

    const b = await pushRandomImage(reg.url, admin, name, 'prod-bbb');
    proxy.add({
      method: 'PUT',
      path: /\/manifests\/prod$/,
      times: 1,
      fault: { kind: 'status', status: 400 },
    });
    r.resetRequestStats();
    const err = await r.promote(ref(name, 'proxy'), 'prod-bbb', 'prod').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryRequestError);
    expect(isRetryable(err)).toBe(false);
    expect(r.requestStats().byStatus['registry PUT 400']).toBe(1);
    expect(await resolve(reg.url, admin, name, 'prod')).toBe(a);
    expect(b).not.toBe(a);
  });

  it('refuses to copy a manifest served with the wrong media type', async () => {
    const name = uniqueRepo();
    const r = client(admin, 'proxy');
    await pushRandomImage(reg.url, admin, name, 'prod-aaa', { mediaType: 'oci' });
    for (const wrong of ['text/plain', 'application/vnd.docker.distribution.manifest.v2+json']) {
      proxy.add({
        method: 'GET',
        path: /\/manifests\/prod-aaa$/,
        times: 1,
        fault: { kind: 'content-type', value: wrong },
      });
      const err = await r.promote(ref(name, 'proxy'), 'prod-aaa', 'prod').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsupportedMediaTypeError);
      expect(isRetryable(err)).toBe(false);
    }
    expect(await resolve(reg.url, admin, name, 'prod')).toBeNull();
    // and a PUT whose Content-Type contradicts the body is refused by the registry, not retried
    const direct = client();
    const m = await direct.client.getManifest(ref(name), 'prod-aaa');
    expect(m.mediaType).toBe(OCI_MANIFEST);
    const put = await direct.client
      .putManifest(
        ref(name),
        'prod',
        m.bytes,
        'application/vnd.docker.distribution.manifest.list.v2+json',
      )
      .catch((e: unknown) => e);
    expect(put).toBeInstanceOf(RegistryRequestError);
    expect(await resolve(reg.url, admin, name, 'prod')).toBeNull();
  });
});
