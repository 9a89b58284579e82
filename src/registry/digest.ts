import { createHash } from 'node:crypto';
import { DigestMismatchError } from './errors.ts';

const DIGEST = /^sha256:[a-f0-9]{64}$/;

export function isDigest(reference: string): boolean {
  return DIGEST.test(reference);
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * Returns the digest of the bytes after checking it against every digest that claims to
 * name them (the reference asked for, the registry's Docker-Content-Digest header).
 * Only sha256 is accepted: it is what every registry rollhook talks to uses, and an
 * unverifiable digest must not be copied under the production tag.
 */
export function verifyDigest(
  what: string,
  bytes: Uint8Array,
  ...claimed: (string | null | undefined)[]
): string {
  const actual = sha256Digest(bytes);
  for (const c of claimed) {
    if (c && c !== actual) throw new DigestMismatchError(what, c, actual);
  }
  return actual;
}
