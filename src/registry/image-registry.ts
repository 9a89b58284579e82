import { randomUUID } from 'node:crypto';
import type { RegistryCredentials } from '../config/schema.ts';
import { logger } from '../log.ts';
import { RegistryClient, type ClientOptions, type ManifestHead } from './client.ts';
import { isDigest } from './digest.ts';
import { ManifestNotFoundError, ProtectedTagError, RegistryStateError } from './errors.ts';
import { OCI_MANIFEST, isIndexMediaType } from './media-types.ts';
import { isValidTag } from './reference.ts';
import { firstMatchingPattern, isLiteralPattern, matchesTagPattern } from './tag-patterns.ts';
import type { RegistryRequestEvent } from './transport.ts';

export const DEFAULT_PROTECTED_TAGS = ['prod', 'latest', 'v*'] as const;

export interface PromoteResult {
  /** what `toTag` pointed at before, null when it did not exist */
  previousDigest: string | null;
  newDigest: string;
  /** false when `toTag` already pointed at `newDigest` (nothing was written) */
  changed: boolean;
}

export interface DeleteSupersededContext {
  /** the digest the new release resolves to: never deleted */
  newDigest: string;
  /** tag patterns that keep a digest (`prod`, `latest`, `v*`); joined with the host's configured ones */
  protectedTags?: readonly string[];
  /** digests that a live Deployment of any configured target runs */
  runningDigests: ReadonlySet<string>;
  /** releases kept besides the current one, newest first (0 = keep none) */
  keepReleases: number;
  /** tags that name releases, e.g. `prod-*` */
  releaseTagPattern: string;
}

/** Which rule kept a digest. */
export type KeepRule =
  'same-digest' | 'running' | 'protected-tag' | 'referenced-by-index' | 'retention';

export interface DeleteSupersededResult {
  deleted: boolean;
  reason: string;
  /** set when a rule kept the digest */
  rule?: KeepRule;
  /** tags that pointed at the digest when it was deleted (a delete by digest removes them all) */
  removedTags?: string[];
}

export interface DeleteTagResult {
  deleted: boolean;
  /** how: the registry's delete-by-tag, a unique dummy manifest then delete, or nothing to do */
  method: 'delete-by-tag' | 'dummy-manifest' | 'absent';
  reason: string;
}

export interface RequestStats {
  registry: number;
  token: number;
  /** `${kind} ${method} ${status}` -> count */
  byStatus: Record<string, number>;
}

const EMPTY_CONFIG = new TextEncoder().encode(
  '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}',
);
const INVENTORY_CONCURRENCY = 8;

/**
 * The registry operations rollhook performs: resolve, promote (retag) and the two kinds of
 * delete. Each is idempotent. Deleting is the one action of rollhook that loses data, so
 * every delete re-reads the registry first and every refusal names the rule.
 */
export class ImageRegistry {
  readonly client: RegistryClient;
  private stats: RequestStats = { registry: 0, token: 0, byStatus: {} };

  constructor(registries: readonly RegistryCredentials[], opts: ClientOptions = {}) {
    const outer = opts.onRequest;
    this.client = new RegistryClient(registries, {
      ...opts,
      onRequest: (e: RegistryRequestEvent) => {
        this.stats[e.kind]++;
        const key = `${e.kind} ${e.method} ${e.status}`;
        this.stats.byStatus[key] = (this.stats.byStatus[key] ?? 0) + 1;
        outer?.(e);
      },
    });
  }

  /** Requests made since construction or the last reset (registry API and token server separately). */
  requestStats(): RequestStats {
    return {
      registry: this.stats.registry,
      token: this.stats.token,
      byStatus: { ...this.stats.byStatus },
    };
  }

  resetRequestStats(): void {
    this.stats = { registry: 0, token: 0, byStatus: {} };
  }

  /** The digest a tag resolves to, or null when the tag does not exist. */
  async digestOf(repository: string, tag: string): Promise<string | null> {
    const head = await this.client.headManifest(repository, tag);
    return head?.digest ?? null;
  }

  /**
   * Points `toTag` at the manifest `fromTag` names, by copying the manifest bytes (no layer
   * moves), then reads `toTag` back to check it resolves to the same digest.
   */
  async promote(repository: string, fromTag: string, toTag: string): Promise<PromoteResult> {
    assertTag(fromTag);
    assertTag(toTag);
    const previousDigest = await this.digestOf(repository, toTag);
    const source = await this.client.getManifest(repository, fromTag);
    if (previousDigest === source.digest) {
      logger.info('registry: tag already promoted', {
        repository,
        fromTag,
        toTag,
        digest: source.digest,
      });
      return { previousDigest, newDigest: source.digest, changed: false };
    }
    const written = await this.client.putManifest(
      repository,
      toTag,
      source.bytes,
      source.mediaType,
    );
    const readBack = await this.digestOf(repository, toTag);
    if (written !== source.digest || readBack !== source.digest) {
      throw new RegistryStateError(
        repository,
        toTag,
        `expected ${source.digest}, the PUT answered ${written} and the tag now resolves to ${readBack ?? 'nothing'}`,
      );
    }
    logger.info('registry: promoted', {
      repository,
      fromTag,
      toTag,
      previousDigest,
      newDigest: source.digest,
      mediaType: source.mediaType,
    });
    return { previousDigest, newDigest: source.digest, changed: true };
  }

  /**
   * Deletes the digest a promote superseded, unless a rule keeps it: the new release
   * resolves to it, a live Deployment runs it, a protected tag points at it, a tagged index
   * (or the new release's index) contains it, or the retention rule keeps it for rollback.
   * The registry is re-read right before the delete; 404 means already gone.
   */
  async deleteSuperseded(
    repository: string,
    digest: string | null,
    ctx: DeleteSupersededContext,
  ): Promise<DeleteSupersededResult> {
    // promote's previousDigest is null on a first deploy: nothing was superseded.
    if (digest === null)
      return { deleted: false, reason: 'nothing superseded: the tag did not exist before' };
    if (!isDigest(digest)) throw new TypeError(`not a sha256 digest: ${digest}`);
    const result = await this.decideAndDelete(repository, digest, ctx);
    if (result.deleted) {
      logger.info('registry: deleted superseded image', {
        repository,
        digest,
        removedTags: result.removedTags,
        reason: result.reason,
      });
    } else if (result.rule) {
      logger.info('registry: kept superseded image', {
        repository,
        digest,
        rule: result.rule,
        reason: result.reason,
      });
    } else {
      logger.info('registry: superseded image already gone', {
        repository,
        digest,
        reason: result.reason,
      });
    }
    return result;
  }

  /**
   * With `keepReleases` > 0 superseded releases are kept, so older ones must go once they
   * fall out of the window: deletes every release digest beyond the newest `keepReleases`
   * (the current one not counted), each through the same rules as deleteSuperseded.
   */
  async pruneReleases(
    repository: string,
    ctx: DeleteSupersededContext,
  ): Promise<DeleteSupersededResult[]> {
    const inventory = await this.inventory(repository);
    const releases = new Set<string>();
    for (const [tag, head] of inventory)
      if (matchesTagPattern(tag, ctx.releaseTagPattern) && head.digest !== ctx.newDigest)
        releases.add(head.digest);
    const ordered = await this.newestFirst(repository, [...releases]);
    const results: DeleteSupersededResult[] = [];
    for (const d of ordered.slice(ctx.keepReleases))
      results.push(await this.deleteSuperseded(repository, d, ctx));
    return results;
  }

  /**
   * Removes one tag and no other, even when other tags share its digest. Uses the registry's
   * delete-by-tag where it has one; otherwise points the tag at a unique dummy manifest and
   * deletes that, after checking the credentials may delete (so a refusal never leaves the
   * tag on the dummy). A tag already absent is success.
   */
  async deleteTag(repository: string, tag: string): Promise<DeleteTagResult> {
    assertTag(tag);
    const protectedPattern = firstMatchingPattern(tag, this.protectedPatterns(repository, []));
    if (protectedPattern) {
      throw new ProtectedTagError(repository, tag, protectedPattern);
    }
    const before = await this.client.headManifest(repository, tag);
    if (!before)
      return this.logTag(repository, tag, {
        deleted: false,
        method: 'absent',
        reason: 'tag does not exist',
      });

    const byTag = await this.client.deleteTagReference(repository, tag);
    if (byTag !== 'unsupported' && (await this.client.headManifest(repository, tag)) === null) {
      return this.logTag(repository, tag, {
        deleted: byTag === 'deleted',
        method: byTag === 'deleted' ? 'delete-by-tag' : 'absent',
        reason: `tag removed by the registry's delete-by-tag (was ${before.digest})`,
      });
    }

    await this.client.assertCanDelete(repository);
    const configDigest = await this.client.ensureBlob(repository, EMPTY_CONFIG);
    const dummy = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: configDigest,
          size: EMPTY_CONFIG.byteLength,
        },
        layers: [],
        annotations: { 'io.rollhook.tag-deletion': `${tag} ${randomUUID()}` },
      }),
    );
    const dummyDigest = await this.client.putManifest(repository, tag, dummy, OCI_MANIFEST);
    try {
      await this.client.deleteManifest(repository, dummyDigest);
    } catch (err) {
      logger.error('registry: tag left on a dummy manifest; deleting the tag again removes it', {
        repository,
        tag,
        dummyDigest,
        error: err,
      });
      throw err;
    }
    const after = await this.client.headManifest(repository, tag);
    if (after) {
      throw new RegistryStateError(
        repository,
        tag,
        `the tag still resolves to ${after.digest} after its dummy manifest was deleted`,
      );
    }
    return this.logTag(repository, tag, {
      deleted: true,
      method: 'dummy-manifest',
      reason: `tag pointed at a unique dummy manifest ${dummyDigest}, which was deleted (was ${before.digest}; other tags on it untouched)`,
    });
  }

  private async decideAndDelete(
    repository: string,
    digest: string,
    ctx: DeleteSupersededContext,
  ): Promise<DeleteSupersededResult> {
    if (digest === ctx.newDigest)
      return {
        deleted: false,
        rule: 'same-digest',
        reason: `the new release resolves to ${digest}`,
      };
    if (ctx.runningDigests.has(digest))
      return { deleted: false, rule: 'running', reason: `a live Deployment runs ${digest}` };

    const protectedTags = this.protectedPatterns(repository, ctx.protectedTags ?? []);
    const inventory = await this.inventory(repository);
    const tagsOn = [...inventory].filter(([, h]) => h.digest === digest).map(([t]) => t);
    for (const t of tagsOn) {
      const pattern = firstMatchingPattern(t, protectedTags);
      if (pattern)
        return {
          deleted: false,
          rule: 'protected-tag',
          reason: `tag ${t} (protected by pattern ${pattern}) points at ${digest}`,
        };
    }

    const candidate =
      tagsOn.length > 0
        ? { digest, mediaType: inventory.get(tagsOn[0] ?? '')?.mediaType ?? '' }
        : await this.client.headManifest(repository, digest);
    if (!candidate) return { deleted: false, reason: `${digest} is already gone` };

    // A manifest inside an index is deleted with that index broken: keep it while any tagged
    // index (or the new release) contains it.
    const indexes = new Set<string>();
    for (const h of inventory.values())
      if (isIndexMediaType(h.mediaType) && h.digest !== digest) indexes.add(h.digest);
    const newHead =
      [...inventory.values()].find((h) => h.digest === ctx.newDigest) ??
      (await this.client.headManifest(repository, ctx.newDigest));
    if (newHead && isIndexMediaType(newHead.mediaType)) indexes.add(ctx.newDigest);
    for (const idx of indexes) {
      const children = await this.childrenOf(repository, idx);
      if (children.includes(digest))
        return {
          deleted: false,
          rule: 'referenced-by-index',
          reason: `index ${idx} contains ${digest}`,
        };
    }
    if (isIndexMediaType(candidate.mediaType)) {
      const running = (await this.childrenOf(repository, digest)).find((c) =>
        ctx.runningDigests.has(c),
      );
      if (running)
        return {
          deleted: false,
          rule: 'running',
          reason: `a live Deployment runs ${running}, a manifest of index ${digest}`,
        };
    }

    if (ctx.keepReleases > 0) {
      const releases = new Set<string>([digest]);
      for (const [tag, h] of inventory)
        if (matchesTagPattern(tag, ctx.releaseTagPattern) && h.digest !== ctx.newDigest)
          releases.add(h.digest);
      const kept = (await this.newestFirst(repository, [...releases])).slice(0, ctx.keepReleases);
      if (kept.includes(digest)) {
        return {
          deleted: false,
          rule: 'retention',
          reason: `${digest} is among the ${ctx.keepReleases} newest releases (${ctx.releaseTagPattern}) kept for rollback`,
        };
      }
    }

    // Re-read right before the delete: a rollback or another promote may have moved a
    // protected tag onto this digest since the inventory was taken.
    for (const p of protectedTags.filter(isLiteralPattern)) {
      if ((await this.client.headManifest(repository, p))?.digest === digest) {
        return {
          deleted: false,
          rule: 'protected-tag',
          reason: `tag ${p} (protected) now points at ${digest}`,
        };
      }
    }
    const outcome = await this.client.deleteManifest(repository, digest);
    if (outcome === 'absent') return { deleted: false, reason: `${digest} is already gone` };
    return {
      deleted: true,
      removedTags: tagsOn,
      reason: `superseded by ${ctx.newDigest}; no rule keeps it (tags removed: ${tagsOn.length > 0 ? tagsOn.join(', ') : 'none'})`,
    };
  }

  /** tag -> digest and media type for every tag of the repository. */
  private async inventory(repository: string): Promise<Map<string, ManifestHead>> {
    const tags = await this.client.listTags(repository);
    const out = new Map<string, ManifestHead>();
    await mapLimit(tags, INVENTORY_CONCURRENCY, async (tag) => {
      const head = await this.client.headManifest(repository, tag);
      if (head) out.set(tag, head);
    });
    return out;
  }

  private async childrenOf(repository: string, digest: string): Promise<string[]> {
    try {
      const m = await this.client.getManifest(repository, digest);
      return (m.body.manifests ?? []).map((d) => d.digest);
    } catch (err) {
      if (err instanceof ManifestNotFoundError) return [];
      throw err;
    }
  }

  /**
   * Orders release digests newest first by their creation time: the manifest's
   * `org.opencontainers.image.created` annotation, else the image config's `created`
   * (the first platform's, for an index). A digest of unknown age counts as newest, so
   * doubt keeps an image rather than deleting it.
   */
  private async newestFirst(repository: string, digests: string[]): Promise<string[]> {
    const ages = new Map<string, number>();
    await mapLimit(digests, INVENTORY_CONCURRENCY, async (d) => {
      ages.set(d, await this.createdAt(repository, d));
    });
    return [...digests].sort(
      (a, b) => (ages.get(b) ?? Infinity) - (ages.get(a) ?? Infinity) || a.localeCompare(b),
    );
  }

  private async createdAt(repository: string, digest: string): Promise<number> {
    try {
      let m = await this.client.getManifest(repository, digest);
      const annotated = parseTime(m.body.annotations?.['org.opencontainers.image.created']);
      if (annotated !== undefined) return annotated;
      const first = m.body.manifests?.[0];
      if (first) m = await this.client.getManifest(repository, first.digest);
      const config = m.body.config;
      if (!config) return Infinity;
      const json = JSON.parse(
        new TextDecoder().decode(await this.client.getBlob(repository, config.digest)),
      ) as { created?: unknown };
      return parseTime(typeof json.created === 'string' ? json.created : undefined) ?? Infinity;
    } catch (err) {
      if (err instanceof ManifestNotFoundError || err instanceof SyntaxError) return Infinity;
      throw err;
    }
  }

  private protectedPatterns(repository: string, extra: readonly string[]): string[] {
    const configured =
      this.client.credentialsFor(repository)?.protectedTags ?? DEFAULT_PROTECTED_TAGS;
    return [...new Set([...configured, ...extra])];
  }

  private logTag(repository: string, tag: string, result: DeleteTagResult): DeleteTagResult {
    logger.info(result.deleted ? 'registry: deleted tag' : 'registry: tag already absent', {
      repository,
      tag,
      method: result.method,
      reason: result.reason,
    });
    return result;
  }
}

function assertTag(tag: string): void {
  if (!isValidTag(tag)) throw new TypeError(`not a valid tag: ${JSON.stringify(tag)}`);
}

function parseTime(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
