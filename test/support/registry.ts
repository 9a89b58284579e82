import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, requireBinary, startProcess, waitUntil, type Started } from './processes.ts';
import { startTokenServer, type TokenServer } from './token-server.ts';

export interface Credentials {
  username: string;
  password: string;
}

export interface TestRegistry {
  /** base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  /** `127.0.0.1:41234`, the host part of image repositories */
  host: string;
  service: string;
  /** admin may pull, push and delete; pusher may pull and push but not delete */
  users: { admin: Credentials; pusher: Credentials };
  /** the registry's config file (for `docker-registry garbage-collect`, with the registry stopped) */
  configPath: string;
  tokenServer: TokenServer;
  proc: Started;
  stop(): Promise<void>;
}

/**
 * Debian's docker-registry (distribution 2.8) on a free loopback port, deletes enabled,
 * behind a token server, storage in a fresh temp dir. Fails with the registry's log when it
 * cannot start.
 */
export async function startRegistry(
  opts: { tokenTtlSeconds?: number } = {},
): Promise<TestRegistry> {
  const bin = requireBinary(
    '/usr/bin/docker-registry',
    "install it with 'apt-get install docker-registry' (scripts/ensure-deps.sh does)",
  );
  const dir = mkdtempSync(join(tmpdir(), 'rollhook-registry-'));
  mkdirSync(join(dir, 'data'));
  const users = {
    admin: { username: 'rollhook', password: randomBytes(12).toString('hex') },
    pusher: { username: 'ci-pusher', password: randomBytes(12).toString('hex') },
  };
  const tokenServer = await startTokenServer({
    dir,
    users: {
      [users.admin.username]: {
        password: users.admin.password,
        actions: ['pull', 'push', 'delete'],
      },
      [users.pusher.username]: { password: users.pusher.password, actions: ['pull', 'push'] },
    },
    ...(opts.tokenTtlSeconds !== undefined ? { ttlSeconds: opts.tokenTtlSeconds } : {}),
  });
  const port = await freePort();
  const configPath = join(dir, 'config.yml');
  // JSON is YAML; no storage.cache section: the in-memory blob cache corrupts repositories under GC.
  const config = {
    version: 0.1,
    log: { level: 'info', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: join(dir, 'data') },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: `127.0.0.1:${port}`, secret: randomBytes(16).toString('hex') },
    health: { storagedriver: { enabled: false } },
    auth: {
      token: {
        realm: tokenServer.realm,
        service: tokenServer.service,
        issuer: tokenServer.issuer,
        rootcertbundle: tokenServer.certPath,
      },
    },
  };
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const proc = startProcess('docker-registry', bin, ['serve', configPath], {
    logFile: join(dir, 'registry.log'),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntil('docker-registry', async () => (await fetch(`${url}/v2/`)).status === 401, {
      timeoutMs: 15_000,
      proc,
    });
  } catch (err) {
    await proc.stop();
    await tokenServer.stop();
    throw err;
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    service: tokenServer.service,
    users,
    configPath,
    tokenServer,
    proc,
    async stop() {
      await proc.stop();
      await tokenServer.stop();
    },
  };
}

// ---- pushing and reading images over the HTTP API, independent of src/registry ----

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const ACCEPT_ALL = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST].join(
  ', ',
);

export type ImageKind = 'oci' | 'docker' | 'oci-index' | 'docker-list';

const tokenCache = new Map<string, string>();

/** fetch with the registry's token challenge, a small independent implementation for tests. */
export async function registryFetch(
  url: string,
  creds: Credentials,
  path: string,
  init: RequestInit = {},
): Promise<Response> {
  const full = `${url}${path}`;
  const cacheKey = `${url} ${creds.username} ${init.method ?? 'GET'} ${path.split('/manifests/')[0]?.split('/blobs/')[0]}`;
  const withToken = (token: string | undefined): RequestInit => ({
    ...init,
    headers: {
      ...(init.headers as Record<string, string>),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
  });
  let res = await fetch(full, withToken(tokenCache.get(cacheKey)));
  if (res.status !== 401) return res;
  await res.arrayBuffer();
  const header = res.headers.get('www-authenticate') ?? '';
  const realm = /realm="([^"]+)"/.exec(header)?.[1];
  const service = /service="([^"]+)"/.exec(header)?.[1];
  const scope = /scope="([^"]+)"/.exec(header)?.[1];
  if (!realm) throw new Error(`no bearer challenge from ${full}: ${header}`);
  const tokenUrl = new URL(realm);
  if (service) tokenUrl.searchParams.set('service', service);
  if (scope) tokenUrl.searchParams.set('scope', scope);
  const tr = await fetch(tokenUrl, {
    headers: {
      authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`,
    },
  });
  if (tr.status !== 200) throw new Error(`token server answered ${tr.status}`);
  const { token } = (await tr.json()) as { token: string };
  tokenCache.set(cacheKey, token);
  res = await fetch(full, withToken(token));
  return res;
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export async function pushBlob(
  url: string,
  creds: Credentials,
  repo: string,
  bytes: Uint8Array,
): Promise<string> {
  const digest = sha256(bytes);
  const start = await registryFetch(url, creds, `/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202)
    throw new Error(`blob upload start: ${start.status} ${await start.text()}`);
  const location = new URL(start.headers.get('location') ?? '', url);
  location.searchParams.set('digest', digest);
  const put = await registryFetch(url, creds, `${location.pathname}${location.search}`, {
    method: 'PUT',
    body: Buffer.from(bytes),
    headers: { 'content-type': 'application/octet-stream' },
  });
  if (put.status !== 201) throw new Error(`blob upload: ${put.status} ${await put.text()}`);
  return digest;
}

/** PUT manifest bytes under a tag or digest; returns the digest the registry answered. */
export async function pushManifest(
  url: string,
  creds: Credentials,
  repo: string,
  reference: string,
  bytes: Uint8Array,
  mediaType: string,
): Promise<string> {
  const res = await registryFetch(url, creds, `/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    body: Buffer.from(bytes),
    headers: { 'content-type': mediaType },
  });
  if (res.status !== 201)
    throw new Error(`manifest put ${repo}:${reference}: ${res.status} ${await res.text()}`);
  const digest = res.headers.get('docker-content-digest');
  if (digest !== sha256(bytes))
    throw new Error(`registry answered digest ${digest}, bytes hash to ${sha256(bytes)}`);
  return digest;
}

async function pushSingle(
  url: string,
  creds: Credentials,
  repo: string,
  reference: string | undefined,
  kind: 'oci' | 'docker',
  created: string,
  arch: string,
): Promise<{ digest: string; bytes: Uint8Array; size: number }> {
  const layer = new Uint8Array(randomBytes(256));
  const layerDigest = await pushBlob(url, creds, repo, layer);
  const config = new TextEncoder().encode(
    JSON.stringify({
      created,
      architecture: arch,
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [layerDigest] },
    }),
  );
  const configDigest = await pushBlob(url, creds, repo, config);
  const oci = kind === 'oci';
  const manifest = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: oci ? OCI_MANIFEST : DOCKER_MANIFEST,
      config: {
        mediaType: oci
          ? 'application/vnd.oci.image.config.v1+json'
          : 'application/vnd.docker.container.image.v1+json',
        digest: configDigest,
        size: config.byteLength,
      },
      layers: [
        {
          mediaType: oci
            ? 'application/vnd.oci.image.layer.v1.tar'
            : 'application/vnd.docker.image.rootfs.diff.tar',
          digest: layerDigest,
          size: layer.byteLength,
        },
      ],
    }),
  );
  const digest = sha256(manifest);
  await pushManifest(
    url,
    creds,
    repo,
    reference ?? digest,
    manifest,
    oci ? OCI_MANIFEST : DOCKER_MANIFEST,
  );
  return { digest, bytes: manifest, size: manifest.byteLength };
}

/**
 * Pushes an image of random content under `tag` and returns its digest. For an index or
 * manifest list, two platform manifests are pushed by digest and the index under the tag.
 */
export async function pushRandomImage(
  url: string,
  creds: Credentials,
  repo: string,
  tag: string,
  opts: { mediaType?: ImageKind; created?: string } = {},
): Promise<string> {
  const kind = opts.mediaType ?? 'oci';
  const created = opts.created ?? new Date().toISOString();
  if (kind === 'oci' || kind === 'docker')
    return (await pushSingle(url, creds, repo, tag, kind, created, 'amd64')).digest;
  const childKind = kind === 'oci-index' ? 'oci' : 'docker';
  const children = [];
  for (const arch of ['amd64', 'arm64']) {
    const c = await pushSingle(url, creds, repo, undefined, childKind, created, arch);
    children.push({
      mediaType: childKind === 'oci' ? OCI_MANIFEST : DOCKER_MANIFEST,
      digest: c.digest,
      size: c.size,
      platform: { architecture: arch, os: 'linux' },
    });
  }
  const indexType = kind === 'oci-index' ? OCI_INDEX : DOCKER_MANIFEST_LIST;
  const index = new TextEncoder().encode(
    JSON.stringify({ schemaVersion: 2, mediaType: indexType, manifests: children }),
  );
  return pushManifest(url, creds, repo, tag, index, indexType);
}

/** Adds `toTag` to the manifest `from` (tag or digest) names: GET then PUT of the same bytes. */
export async function tagImage(
  url: string,
  creds: Credentials,
  repo: string,
  from: string,
  toTag: string,
): Promise<string> {
  const res = await registryFetch(url, creds, `/v2/${repo}/manifests/${from}`, {
    headers: { accept: ACCEPT_ALL },
  });
  if (res.status !== 200) throw new Error(`manifest get ${repo}:${from}: ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  return pushManifest(url, creds, repo, toTag, bytes, res.headers.get('content-type') ?? '');
}

/** The digest a tag or digest resolves to, or null when the registry has no such manifest. */
export async function resolve(
  url: string,
  creds: Credentials,
  repo: string,
  reference: string,
): Promise<string | null> {
  const res = await registryFetch(url, creds, `/v2/${repo}/manifests/${reference}`, {
    method: 'HEAD',
    headers: { accept: ACCEPT_ALL },
  });
  if (res.status === 404) return null;
  if (res.status !== 200) throw new Error(`manifest head ${repo}:${reference}: ${res.status}`);
  return res.headers.get('docker-content-digest');
}

/** Every tag of a repository, sorted (tests compare sets). */
export async function listTags(url: string, creds: Credentials, repo: string): Promise<string[]> {
  const res = await registryFetch(url, creds, `/v2/${repo}/tags/list?n=10000`);
  if (res.status === 404) return [];
  if (res.status !== 200) throw new Error(`tags list ${repo}: ${res.status}`);
  const body = (await res.json()) as { tags: string[] | null };
  return [...(body.tags ?? [])].sort();
}

/** tag -> digest for every tag, for "no other tag was lost" assertions. */
export async function tagMap(
  url: string,
  creds: Credentials,
  repo: string,
): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const t of await listTags(url, creds, repo)) out[t] = await resolve(url, creds, repo, t);
  return out;
}

/**
 * Removes one tag the way an OCI 1.1 registry's delete-by-tag would, for emulating one:
 * points the tag at a unique manifest, then deletes that manifest.
 */
export async function removeTagOnly(
  url: string,
  creds: Credentials,
  repo: string,
  tag: string,
): Promise<void> {
  const config = new TextEncoder().encode('{}');
  const configDigest = await pushBlob(url, creds, repo, config);
  const bytes = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: 2,
      },
      layers: [],
      annotations: { nonce: randomBytes(8).toString('hex') },
    }),
  );
  const digest = await pushManifest(url, creds, repo, tag, bytes, OCI_MANIFEST);
  const res = await registryFetch(url, creds, `/v2/${repo}/manifests/${digest}`, {
    method: 'DELETE',
  });
  if (res.status !== 202) throw new Error(`delete ${digest}: ${res.status}`);
}

/** A repository name no other test uses. */
export function uniqueRepo(prefix = 'group/app'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}
