import type { RegistryCredentials } from '../config/schema.ts';
import { isDigest, sha256Digest, verifyDigest } from './digest.ts';
import { ManifestNotFoundError, RegistryPermissionError, RegistryRequestError } from './errors.ts';
import {
  MANIFEST_ACCEPT,
  baseMediaType,
  checkManifest,
  type ManifestBody,
  type ManifestMediaType,
} from './media-types.ts';
import { parseRepository, type RepositoryRef } from './reference.ts';
import {
  HostTransport,
  type ActionClass,
  type RegistryResponse,
  type TransportOptions,
} from './transport.ts';

export interface ManifestHead {
  digest: string;
  mediaType: string;
}

export interface Manifest {
  digest: string;
  mediaType: ManifestMediaType;
  bytes: Uint8Array;
  body: ManifestBody;
}

export interface ClientOptions extends TransportOptions {
  /** page size asked of tags/list (registries may answer with fewer) */
  tagPageSize?: number;
}

/** A digest no registry holds: a DELETE of it tells whether the credentials may delete. */
const PROBE_DIGEST = `sha256:${'0'.repeat(64)}`;

/**
 * OCI distribution (registry API v2) client for every configured registry. Repositories are
 * full references (`host[:port]/path`); the host part picks credentials and base URL.
 */
export class RegistryClient {
  private readonly registries: RegistryCredentials[];
  private readonly opts: ClientOptions;
  private readonly transports = new Map<string, HostTransport>();

  constructor(registries: readonly RegistryCredentials[], opts: ClientOptions = {}) {
    this.registries = [...registries];
    this.opts = opts;
  }

  /** Credentials config for the repository's host (protected tags and so on), if any. */
  credentialsFor(repository: string): RegistryCredentials | undefined {
    const { host } = parseRepository(repository);
    return this.registries.find((r) => r.host.toLowerCase() === host);
  }

  /** Forget cached tokens everywhere. */
  dropTokens(): void {
    for (const t of this.transports.values()) t.dropTokens();
  }

  /** HEAD a manifest; null when the registry says it does not exist. */
  async headManifest(repository: string, reference: string): Promise<ManifestHead | null> {
    const ref = parseRepository(repository);
    const res = await this.call(ref, 'HEAD', `/manifests/${reference}`, 'pull', {
      accept: MANIFEST_ACCEPT,
    });
    if (res.status === 404) return null;
    this.expect(ref, 'HEAD', `/manifests/${reference}`, res, [200]);
    const digest = res.headers.get('docker-content-digest');
    if (digest && isDigest(digest))
      return { digest, mediaType: baseMediaType(res.headers.get('content-type')) };
    // Some registries omit the header on HEAD: hash the body of a GET instead.
    const m = await this.getManifest(repository, reference);
    return { digest: m.digest, mediaType: m.mediaType };
  }

  /** GET a manifest, verified: the bytes hash to the digest asked for and to the one the registry named. */
  async getManifest(repository: string, reference: string): Promise<Manifest> {
    const ref = parseRepository(repository);
    const path = `/manifests/${reference}`;
    const res = await this.call(ref, 'GET', path, 'pull', { accept: MANIFEST_ACCEPT });
    if (res.status === 404) throw new ManifestNotFoundError(ref.full, reference);
    this.expect(ref, 'GET', path, res, [200]);
    const what = `${ref.full}:${reference}`;
    const digest = verifyDigest(
      what,
      res.bytes,
      isDigest(reference) ? reference : undefined,
      res.headers.get('docker-content-digest'),
    );
    const { mediaType, body } = checkManifest(what, res.headers.get('content-type'), res.bytes);
    return { digest, mediaType, bytes: res.bytes, body };
  }

  /** PUT the exact bytes under a tag (or digest); returns the digest, checked against the registry's answer. */
  async putManifest(
    repository: string,
    reference: string,
    bytes: Uint8Array,
    mediaType: ManifestMediaType,
  ): Promise<string> {
    const ref = parseRepository(repository);
    const path = `/manifests/${reference}`;
    const res = await this.call(ref, 'PUT', path, 'push', { 'content-type': mediaType }, bytes);
    this.expect(ref, 'PUT', path, res, [201, 200]);
    return verifyDigest(
      `${ref.full}:${reference} (put)`,
      bytes,
      isDigest(reference) ? reference : undefined,
      res.headers.get('docker-content-digest'),
    );
  }

  /** DELETE a manifest by digest. `absent` when the registry says it is already gone. */
  async deleteManifest(repository: string, digest: string): Promise<'deleted' | 'absent'> {
    if (!isDigest(digest)) throw new TypeError(`not a sha256 digest: ${digest}`);
    const ref = parseRepository(repository);
    const path = `/manifests/${digest}`;
    const res = await this.call(ref, 'DELETE', path, 'delete', { accept: MANIFEST_ACCEPT });
    if (res.status === 404) return 'absent';
    this.expect(ref, 'DELETE', path, res, [202, 200, 204]);
    return 'deleted';
  }

  /**
   * DELETE by tag (OCI distribution 1.1, GitLab's registry). `unsupported` when the
   * registry refuses the form (distribution 2.8: 400 DIGEST_INVALID; others 405).
   */
  async deleteTagReference(
    repository: string,
    tag: string,
  ): Promise<'deleted' | 'absent' | 'unsupported'> {
    const ref = parseRepository(repository);
    const path = `/manifests/${tag}`;
    const res = await this.call(ref, 'DELETE', path, 'delete', { accept: MANIFEST_ACCEPT });
    if (res.status === 202 || res.status === 200 || res.status === 204) return 'deleted';
    if (res.status === 404) {
      // 404 for the form itself (no such route) must not be read as "tag gone".
      return errorCode(res) === 'MANIFEST_UNKNOWN' || errorCode(res) === 'NAME_UNKNOWN'
        ? 'absent'
        : 'unsupported';
    }
    if (res.status === 400 || res.status === 405 || res.status === 501) return 'unsupported';
    this.expect(ref, 'DELETE', path, res, [202]);
    return 'deleted';
  }

  /**
   * Throws RegistryPermissionError unless the credentials may delete in this repository,
   * without deleting anything: a DELETE of a digest that cannot exist answers 404 when allowed.
   */
  async assertCanDelete(repository: string): Promise<void> {
    const ref = parseRepository(repository);
    const path = `/manifests/${PROBE_DIGEST}`;
    const res = await this.call(ref, 'DELETE', path, 'delete', { accept: MANIFEST_ACCEPT });
    if (res.status === 404) return;
    if (res.status === 403)
      throw new RegistryPermissionError({
        host: ref.host,
        repository: ref.name,
        action: 'delete',
        username: this.transport(ref).creds.username,
      });
    // 405 UNSUPPORTED: deletes are disabled in the registry's config; also a refusal.
    this.expect(ref, 'DELETE', path, res, [404]);
  }

  /** Every tag of the repository, following `Link` pages. Unsorted, as the registry returns them. */
  async listTags(repository: string): Promise<string[]> {
    const ref = parseRepository(repository);
    const tags: string[] = [];
    let path: string | undefined = `/tags/list?n=${this.opts.tagPageSize ?? 1000}`;
    const seen = new Set<string>();
    while (path && !seen.has(path)) {
      seen.add(path);
      const res = await this.call(ref, 'GET', path, 'pull', { accept: 'application/json' });
      if (res.status === 404) return tags;
      this.expect(ref, 'GET', path, res, [200]);
      const body = JSON.parse(new TextDecoder().decode(res.bytes)) as { tags?: unknown };
      if (Array.isArray(body.tags))
        for (const t of body.tags) if (typeof t === 'string') tags.push(t);
      path = nextPage(res.headers.get('link'), ref);
    }
    return tags;
  }

  /** GET a blob (small ones: image configs), verified against its digest. */
  async getBlob(repository: string, digest: string): Promise<Uint8Array> {
    const ref = parseRepository(repository);
    const path = `/blobs/${digest}`;
    const res = await this.call(ref, 'GET', path, 'pull', {});
    if (res.status === 404) throw new ManifestNotFoundError(ref.full, digest);
    this.expect(ref, 'GET', path, res, [200]);
    verifyDigest(`${ref.full}@${digest} (blob)`, res.bytes, digest);
    return res.bytes;
  }

  /** Uploads a small blob in one request unless the repository has it already; returns its digest. */
  async ensureBlob(repository: string, bytes: Uint8Array): Promise<string> {
    const ref = parseRepository(repository);
    const digest = sha256Digest(bytes);
    const head = await this.call(ref, 'HEAD', `/blobs/${digest}`, 'pull', {});
    if (head.status === 200) return digest;
    const start = await this.call(
      ref,
      'POST',
      '/blobs/uploads/',
      'push',
      { 'content-length': '0' },
      new Uint8Array(),
    );
    this.expect(ref, 'POST', '/blobs/uploads/', start, [202]);
    const location = start.headers.get('location');
    if (!location)
      throw new RegistryRequestError({
        host: ref.host,
        method: 'POST',
        path: '/blobs/uploads/',
        status: start.status,
        code: undefined,
        detail: 'no Location header',
      });
    const url = new URL(location, this.transport(ref).creds.url);
    url.searchParams.set('digest', digest);
    const putPath = `${url.pathname}${url.search}`;
    const put = await this.transport(ref).request({
      method: 'PUT',
      path: putPath,
      repository: ref.name,
      action: 'push',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    this.expect(ref, 'PUT', url.pathname, put, [201]);
    return digest;
  }

  private call(
    ref: RepositoryRef,
    method: string,
    suffix: string,
    action: ActionClass,
    headers: Record<string, string>,
    body?: Uint8Array,
  ): Promise<RegistryResponse> {
    return this.transport(ref).request({
      method,
      path: `/v2/${ref.name}${suffix}`,
      repository: ref.name,
      action,
      headers,
      ...(body ? { body } : {}),
    });
  }

  private expect(
    ref: RepositoryRef,
    method: string,
    path: string,
    res: RegistryResponse,
    ok: number[],
  ): void {
    if (ok.includes(res.status)) return;
    const { code, detail } = errorBody(res);
    if (res.status === 403 && method === 'DELETE') {
      throw new RegistryPermissionError({
        host: ref.host,
        repository: ref.name,
        action: 'delete',
        username: this.transport(ref).creds.username,
      });
    }
    if (res.status === 403) {
      throw new RegistryPermissionError({
        host: ref.host,
        repository: ref.name,
        action: method === 'GET' || method === 'HEAD' ? 'pull' : 'push',
        username: this.transport(ref).creds.username,
      });
    }
    throw new RegistryRequestError({
      host: ref.host,
      method,
      path: `/v2/${ref.name}${path}`,
      status: res.status,
      code,
      detail,
    });
  }

  private transport(ref: RepositoryRef): HostTransport {
    let t = this.transports.get(ref.host);
    if (!t) {
      const creds = this.registries.find((r) => r.host.toLowerCase() === ref.host);
      t = new HostTransport(
        {
          host: ref.host,
          url: (creds?.url ?? `https://${ref.host}`).replace(/\/+$/, ''),
          username: creds?.username,
          password: creds?.password,
        },
        this.opts,
      );
      this.transports.set(ref.host, t);
    }
    return t;
  }
}

function errorBody(res: RegistryResponse): {
  code: string | undefined;
  detail: string | undefined;
} {
  try {
    const body = JSON.parse(new TextDecoder().decode(res.bytes)) as {
      errors?: { code?: unknown; message?: unknown }[];
    };
    const first = body.errors?.[0];
    return {
      code: typeof first?.code === 'string' ? first.code : undefined,
      detail: typeof first?.message === 'string' ? first.message.slice(0, 300) : undefined,
    };
  } catch {
    return { code: undefined, detail: undefined };
  }
}

function errorCode(res: RegistryResponse): string | undefined {
  return errorBody(res).code;
}

/** `Link: </v2/x/tags/list?last=a&n=2>; rel="next"` -> the path relative to /v2/<name> */
function nextPage(link: string | null, ref: RepositoryRef): string | undefined {
  if (!link) return undefined;
  const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(link);
  if (!m?.[1]) return undefined;
  const url = new URL(m[1], 'http://placeholder');
  const prefix = `/v2/${ref.name}`;
  if (!url.pathname.startsWith(prefix)) return undefined;
  return `${url.pathname.slice(prefix.length)}${url.search}`;
}
