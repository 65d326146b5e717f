/**
 * The signature of a webhook, Stripe's scheme: `X-Posepool-Signature: t=<unix seconds>,v1=<hex>`,
 * where v1 = HMAC-SHA256(WEBHOOK_SECRET, `${t}.${rawBody}`). The timestamp is signed with the body,
 * so a receiver that checks it against its clock (the replay window) refuses a captured request
 * sent again later. Self-contained (node:crypto only): a receiver may copy verifyWebhookSignature.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-posepool-signature';
/** How old (or how far ahead) a signature's timestamp may be, by default. */
export const DEFAULT_TOLERANCE_S = 300;

/** The header's value for this body, signed at `t` (unix seconds). */
export function signWebhook(secret: string, rawBody: string, t = Math.floor(Date.now() / 1000)): string {
  return `t=${t},v1=${hmac(secret, t, rawBody)}`;
}

/**
 * True when `header` (X-Posepool-Signature) signs `rawBody` (the bytes received, before any JSON
 * parsing) with `secret`, at a time within `toleranceS` of `now` (ms, Date.now() by default).
 * A header may carry several v1 values (one per secret, while a secret is being rotated): one must match.
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | undefined,
  rawBody: string | Buffer,
  { toleranceS = DEFAULT_TOLERANCE_S, now = Date.now() }: { toleranceS?: number; now?: number } = {},
): boolean {
  if (!secret || typeof header !== 'string') return false;
  let t: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const [key, value] = [part.slice(0, part.indexOf('=')).trim(), part.slice(part.indexOf('=') + 1).trim()];
    if (key === 't' && /^\d{1,12}$/.test(value)) t = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/i.test(value)) signatures.push(value.toLowerCase());
  }
  if (t === undefined || signatures.length === 0) return false;
  if (Math.abs(now / 1000 - t) > toleranceS) return false; // stale (a replay) or from a clock far ahead
  const expected = Buffer.from(hmac(secret, t, rawBody), 'hex');
  // Every candidate is compared, in constant time: the time taken says nothing about which matched.
  let ok = false;
  for (const s of signatures) ok = timingSafeEqual(expected, Buffer.from(s, 'hex')) || ok;
  return ok;
}

function hmac(secret: string, t: number, rawBody: string | Buffer): string {
  return createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest('hex');
}
