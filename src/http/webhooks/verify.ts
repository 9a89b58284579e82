import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Target } from '../../config/schema.ts';

/** Constant-time string compare; lengths are compared first (length is not secret here). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) return false;
  return timingSafeEqual(ab, bb);
}

/** The targets whose webhook secret equals the token; every secret is compared, no early exit. */
export function targetsForToken(targets: readonly Target[], token: string): Target[] {
  const out: Target[] = [];
  for (const t of targets) if (safeEqual(t.gitlab.webhookSecret, token)) out.push(t);
  return out;
}

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

const TOLERANCE_S = 5 * 60;

/**
 * Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature: `v1,<base64>` of
 * HMAC-SHA256 over `id.timestamp.body`, key = base64 after `whsec_`).
 */
export function verifyStandardSignature(
  secret: string,
  headers: {
    id?: string | undefined;
    timestamp?: string | undefined;
    signature?: string | undefined;
  },
  body: Buffer,
  nowS = Math.floor(Date.now() / 1000),
): SignatureCheck {
  const { id, timestamp, signature } = headers;
  if (!id || !timestamp || !signature)
    return {
      ok: false,
      reason: 'webhook-id, webhook-timestamp and webhook-signature headers are required',
    };
  const ts = Number(timestamp);
  if (!Number.isInteger(ts) || Math.abs(nowS - ts) > TOLERANCE_S)
    return { ok: false, reason: 'webhook-timestamp is outside the 5 minute tolerance' };
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key)
    .update(`${id}.${timestamp}.`)
    .update(body)
    .digest('base64');
  const ok = signature
    .split(' ')
    .some((s) => s.startsWith('v1,') && safeEqual(s.slice(3), expected));
  return ok ? { ok: true } : { ok: false, reason: 'webhook-signature does not match' };
}
