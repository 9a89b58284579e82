import { z } from 'zod';
import { UnsupportedMediaTypeError } from './errors.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

export const MANIFEST_MEDIA_TYPES = [
  OCI_MANIFEST,
  DOCKER_MANIFEST,
  OCI_INDEX,
  DOCKER_MANIFEST_LIST,
] as const;
export type ManifestMediaType = (typeof MANIFEST_MEDIA_TYPES)[number];

/**
 * Every type must be listed: without the OCI types distribution answers 404 for OCI
 * manifests by tag, and without Docker v2 it rewrites Docker manifests to schema1 under
 * another digest.
 */
export const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

export function isManifestMediaType(value: string): value is ManifestMediaType {
  return (MANIFEST_MEDIA_TYPES as readonly string[]).includes(value);
}

export function isIndexMediaType(value: string): boolean {
  return value === OCI_INDEX || value === DOCKER_MANIFEST_LIST;
}

const descriptor = z.object({
  mediaType: z.string().optional(),
  digest: z.string().regex(/^[a-z0-9]+:[a-f0-9]+$/),
  size: z.number().int().nonnegative(),
  annotations: z.record(z.string(), z.string()).optional(),
});

const manifestBody = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: descriptor.optional(),
  layers: z.array(descriptor).optional(),
  manifests: z.array(descriptor).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type ManifestBody = z.infer<typeof manifestBody>;

/** Strips parameters (`; charset=utf-8`) that some proxies add. */
export function baseMediaType(contentType: string | null | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/**
 * Checks that the bytes are a manifest of the type the registry announced, so that a PUT
 * of the same bytes with the same Content-Type reproduces the same object. Returns the
 * parsed body for callers that need its children or config.
 */
export function checkManifest(
  what: string,
  contentType: string | null | undefined,
  bytes: Uint8Array,
): { mediaType: ManifestMediaType; body: ManifestBody } {
  const mediaType = baseMediaType(contentType);
  if (!isManifestMediaType(mediaType)) {
    throw new UnsupportedMediaTypeError(
      what,
      mediaType,
      `expected one of ${MANIFEST_MEDIA_TYPES.join(', ')}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new UnsupportedMediaTypeError(what, mediaType, 'body is not JSON');
  }
  const parsed = manifestBody.safeParse(json);
  if (!parsed.success) {
    throw new UnsupportedMediaTypeError(
      what,
      mediaType,
      `body is not a schema 2 manifest: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
    );
  }
  const body = parsed.data;
  // The body's own mediaType is optional in OCI; when present it must agree with the header.
  if (body.mediaType !== undefined && body.mediaType !== mediaType) {
    throw new UnsupportedMediaTypeError(what, mediaType, `body says ${body.mediaType}`);
  }
  if (isIndexMediaType(mediaType) ? !body.manifests : !body.config) {
    throw new UnsupportedMediaTypeError(
      what,
      mediaType,
      isIndexMediaType(mediaType) ? 'index without manifests' : 'manifest without config',
    );
  }
  return { mediaType, body };
}
