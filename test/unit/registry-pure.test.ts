import { describe, expect, it } from 'vitest';
import { isDigest, sha256Digest, verifyDigest } from '../../src/registry/digest.ts';
import {
  DigestMismatchError,
  InvalidRepositoryError,
  UnsupportedMediaTypeError,
} from '../../src/registry/errors.ts';
import {
  checkManifest,
  DOCKER_MANIFEST,
  OCI_INDEX,
  OCI_MANIFEST,
} from '../../src/registry/media-types.ts';
import { parseRepository } from '../../src/registry/reference.ts';
import {
  firstMatchingPattern,
  isLiteralPattern,
  matchesTagPattern,
} from '../../src/registry/tag-patterns.ts';
import { parseWwwAuthenticate } from '../../src/registry/www-authenticate.ts';

describe('parseWwwAuthenticate', () => {
  it('reads a distribution Bearer challenge with a comma inside the quoted scope', () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="https://gitlab.example.com/jwt/auth",service="container_registry",scope="repository:group/app:pull,push"',
      ),
    ).toEqual({
      scheme: 'bearer',
      realm: 'https://gitlab.example.com/jwt/auth',
      service: 'container_registry',
      scope: 'repository:group/app:pull,push',
      error: undefined,
      errorDescription: undefined,
    });
  });

  it('tells insufficient_scope from invalid_token', () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="r",service="s",scope="repository:a:delete",error="insufficient_scope"',
      ),
    ).toMatchObject({ error: 'insufficient_scope', scope: 'repository:a:delete' });
    expect(
      parseWwwAuthenticate(
        'Bearer realm="r",error="invalid_token",error_description="token expired"',
      ),
    ).toMatchObject({ error: 'invalid_token', errorDescription: 'token expired' });
  });

  it('accepts spaces, unquoted values, escapes and any scheme case', () => {
    expect(parseWwwAuthenticate('bearer realm = "r\\"x", service=svc')).toMatchObject({
      scheme: 'bearer',
      realm: 'r"x',
      service: 'svc',
    });
  });

  it('reads Basic, and prefers Bearer when both are offered', () => {
    expect(parseWwwAuthenticate('Basic realm="Registry Realm"')).toEqual({
      scheme: 'basic',
      realm: 'Registry Realm',
    });
    expect(
      parseWwwAuthenticate('Basic realm="x", Bearer realm="https://auth/token",service="s"'),
    ).toMatchObject({ scheme: 'bearer', realm: 'https://auth/token' });
  });

  it('answers null for nothing usable', () => {
    expect(parseWwwAuthenticate(null)).toBeNull();
    expect(parseWwwAuthenticate('')).toBeNull();
    expect(parseWwwAuthenticate('Bearer service="s"')).toBeNull();
    expect(parseWwwAuthenticate('Negotiate abc')).toBeNull();
  });
});

describe('digests', () => {
  const bytes = new TextEncoder().encode('{"schemaVersion":2}');
  const digest = sha256Digest(bytes);

  it('hashes with sha256 and recognises digests', () => {
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(isDigest(digest)).toBe(true);
    expect(isDigest('prod-abc')).toBe(false);
    expect(isDigest(`sha512:${'a'.repeat(128)}`)).toBe(false);
  });

  it('accepts bytes whose every claimed digest matches and rejects any other', () => {
    expect(verifyDigest('x', bytes, digest, null, undefined, digest)).toBe(digest);
    const wrong = `sha256:${'1'.repeat(64)}`;
    expect(() => verifyDigest('x', bytes, digest, wrong)).toThrow(DigestMismatchError);
    expect(() => verifyDigest('x', bytes, wrong)).toThrow(/expected sha256:1{64}/);
  });
});

describe('tag patterns', () => {
  it('matches globs with * and ? and treats everything else literally', () => {
    expect(matchesTagPattern('v1.2.3', 'v*')).toBe(true);
    expect(matchesTagPattern('prod', 'v*')).toBe(false);
    expect(matchesTagPattern('prod-abc', 'prod-*')).toBe(true);
    expect(matchesTagPattern('prod', 'prod-*')).toBe(false);
    expect(matchesTagPattern('prodXabc', 'prod.abc')).toBe(false);
    expect(matchesTagPattern('prod.abc', 'prod.abc')).toBe(true);
    expect(matchesTagPattern('v1', 'v?')).toBe(true);
    expect(matchesTagPattern('v10', 'v?')).toBe(false);
    expect(matchesTagPattern('latest', 'latest')).toBe(true);
    expect(matchesTagPattern('latest-1', 'latest')).toBe(false);
  });

  it('names the pattern that matched and tells literal patterns', () => {
    expect(firstMatchingPattern('v2', ['prod', 'latest', 'v*'])).toBe('v*');
    expect(firstMatchingPattern('ci-1', ['prod', 'latest', 'v*'])).toBeUndefined();
    expect(isLiteralPattern('prod')).toBe(true);
    expect(isLiteralPattern('v*')).toBe(false);
  });
});

describe('checkManifest', () => {
  const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
  const config = {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    digest: `sha256:${'a'.repeat(64)}`,
    size: 2,
  };

  it('accepts a manifest whose header and body agree, with or without a body mediaType', () => {
    expect(
      checkManifest(
        'x',
        `${OCI_MANIFEST}; charset=utf-8`,
        enc({ schemaVersion: 2, config, layers: [] }),
      ).mediaType,
    ).toBe(OCI_MANIFEST);
    expect(
      checkManifest(
        'x',
        DOCKER_MANIFEST,
        enc({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config, layers: [] }),
      ).mediaType,
    ).toBe(DOCKER_MANIFEST);
    expect(
      checkManifest('x', OCI_INDEX, enc({ schemaVersion: 2, manifests: [config] })).body.manifests,
    ).toHaveLength(1);
  });

  it('refuses unknown types, schema1, disagreement and non-JSON', () => {
    expect(() => checkManifest('x', 'text/plain', enc({ schemaVersion: 2, config }))).toThrow(
      UnsupportedMediaTypeError,
    );
    expect(() =>
      checkManifest(
        'x',
        'application/vnd.docker.distribution.manifest.v1+prettyjws',
        enc({ schemaVersion: 1 }),
      ),
    ).toThrow(UnsupportedMediaTypeError);
    expect(() =>
      checkManifest(
        'x',
        DOCKER_MANIFEST,
        enc({ schemaVersion: 2, mediaType: OCI_MANIFEST, config }),
      ),
    ).toThrow(/body says/);
    expect(() => checkManifest('x', OCI_INDEX, enc({ schemaVersion: 2, config }))).toThrow(
      /index without manifests/,
    );
    expect(() => checkManifest('x', OCI_MANIFEST, new TextEncoder().encode('not json'))).toThrow(
      /not JSON/,
    );
  });
});

describe('parseRepository', () => {
  it('splits host (with port) and path', () => {
    expect(parseRepository('registry.example.com/facile/my-project/php-prod')).toEqual({
      host: 'registry.example.com',
      name: 'facile/my-project/php-prod',
      full: 'registry.example.com/facile/my-project/php-prod',
    });
    expect(parseRepository('127.0.0.1:5000/group/app')).toMatchObject({
      host: '127.0.0.1:5000',
      name: 'group/app',
    });
  });

  it('refuses tags, digests, missing hosts and bad paths', () => {
    for (const bad of [
      'app',
      '/group/app',
      'reg.io/group/app:prod',
      'reg.io/group/app@sha256:abc',
      'reg.io/Group/App',
      'reg.io/a//b',
    ]) {
      expect(() => parseRepository(bad), bad).toThrow(InvalidRepositoryError);
    }
  });
});
