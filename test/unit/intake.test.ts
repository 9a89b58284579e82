import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { safeEqual, verifyStandardSignature } from '../../src/http/webhooks/verify.ts';
import { decide } from '../../src/targets/plan.ts';
import { globToRegExp, imageTag, refMatches } from '../../src/targets/match.ts';
import { testConfig } from '../support/config.ts';

const target = testConfig({ redisUrl: 'redis://127.0.0.1:1' }).targets[0]!;
const facts = {
  id: 10,
  ref: 'main',
  tag: false,
  sha: 'a'.repeat(40),
  source: 'push',
  status: 'success',
  terminal: true,
};

describe('ref and source rules', () => {
  it('matches exact refs and globs like deployable branches in .gitlab-ci.yml', () => {
    expect(refMatches(['main', 'release/*'], 'main')).toBe(true);
    expect(refMatches(['main', 'release/*'], 'release/2026.11')).toBe(true);
    expect(refMatches(['main', 'release/*'], 'mainline')).toBe(false);
    expect(refMatches(['v*'], 'v1.2.3')).toBe(true);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
  });

  it('deploys a successful branch pipeline on a matching ref, and says why not otherwise', () => {
    expect(decide(target, facts)).toMatchObject({ deploy: true });
    expect(decide(target, { ...facts, status: 'running', terminal: false })).toMatchObject({
      deploy: false,
      reason: 'pipeline status is running, not success',
    });
    expect(decide(target, { ...facts, ref: 'feature/x' })).toMatchObject({
      deploy: false,
      reason: expect.stringContaining('ref feature/x is not deployed'),
    });
    expect(decide(target, { ...facts, source: 'merge_request_event' })).toMatchObject({
      deploy: false,
      reason: expect.stringContaining('source merge_request_event'),
    });
    // rollhook's own commit statuses create `external` pipelines: never a deploy.
    expect(decide(target, { ...facts, source: 'external' })).toMatchObject({ deploy: false });
  });

  it('renders tag templates', () => {
    expect(imageTag('prod-{sha}', { sha: 'abc' })).toBe('prod-abc');
    expect(imageTag('ci-{ref}-{pipeline}', { sha: 'a', ref: 'feature/x', pipelineId: 7 })).toBe(
      'ci-feature-x-7',
    );
  });
});

describe('webhook verification', () => {
  it('compares tokens in constant time, length first', () => {
    expect(safeEqual('secret', 'secret')).toBe(true);
    expect(safeEqual('secret', 'secreT')).toBe(false);
    expect(safeEqual('secret', 'secret1')).toBe(false);
  });

  it('verifies Standard Webhooks signatures', () => {
    const key = Buffer.from('0123456789abcdef0123456789abcdef');
    const secret = `whsec_${key.toString('base64')}`;
    const body = Buffer.from('{"a":1}');
    const now = 1_800_000_000;
    const sig = createHmac('sha256', key).update(`msg_1.${now}.{"a":1}`).digest('base64');
    expect(
      verifyStandardSignature(
        secret,
        { id: 'msg_1', timestamp: String(now), signature: `v1,bad v1,${sig}` },
        body,
        now,
      ),
    ).toEqual({ ok: true });
    expect(
      verifyStandardSignature(
        secret,
        { id: 'msg_2', timestamp: String(now), signature: `v1,${sig}` },
        body,
        now,
      ),
    ).toMatchObject({ ok: false, reason: 'webhook-signature does not match' });
    expect(
      verifyStandardSignature(
        secret,
        { id: 'msg_1', timestamp: String(now - 3600), signature: `v1,${sig}` },
        body,
        now,
      ),
    ).toMatchObject({ ok: false, reason: expect.stringContaining('tolerance') });
    expect(verifyStandardSignature(secret, { id: 'msg_1' }, body, now)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('required'),
    });
  });
});
