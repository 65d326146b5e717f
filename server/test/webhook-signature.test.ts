/** The webhook signature (Stripe's scheme): what verifyWebhookSignature accepts and refuses. */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signWebhook, verifyWebhookSignature } from '../jobs/webhook-signature.js';

const SECRET = 'whsec-unit-0123456789abcdef';
const BODY = JSON.stringify({ type: 'job.succeeded', job: { id: 'j1', state: 'succeeded' }, sentAt: '2026-12-07T00:00:00.000Z' });
const T = 1_800_000_000; // unix seconds
const at = (s: number) => s * 1000;

describe('webhook signature', () => {
  it('is t=<seconds>,v1=<hex HMAC-SHA256(secret, "t.body")>', () => {
    const expected = createHmac('sha256', SECRET).update(`${T}.${BODY}`).digest('hex');
    expect(signWebhook(SECRET, BODY, T)).toBe(`t=${T},v1=${expected}`);
  });

  it('verifies a valid signature, on a string or the raw bytes, within the window either side', () => {
    const header = signWebhook(SECRET, BODY, T);
    expect(verifyWebhookSignature(SECRET, header, BODY, { now: at(T) })).toBe(true);
    expect(verifyWebhookSignature(SECRET, header, Buffer.from(BODY), { now: at(T + 299) })).toBe(true);
    expect(verifyWebhookSignature(SECRET, header, BODY, { now: at(T - 299) })).toBe(true); // receiver's clock behind
  });

  it('refuses a tampered body', () => {
    const header = signWebhook(SECRET, BODY, T);
    expect(verifyWebhookSignature(SECRET, header, BODY.replace('succeeded', 'failed'), { now: at(T) })).toBe(false);
    expect(verifyWebhookSignature(SECRET, header, `${BODY} `, { now: at(T) })).toBe(false);
  });

  it('refuses a stale timestamp (a replay) and one too far ahead; the window is settable', () => {
    const header = signWebhook(SECRET, BODY, T);
    expect(verifyWebhookSignature(SECRET, header, BODY, { now: at(T + 301) })).toBe(false);
    expect(verifyWebhookSignature(SECRET, header, BODY, { now: at(T - 301) })).toBe(false);
    expect(verifyWebhookSignature(SECRET, header, BODY, { now: at(T + 301), toleranceS: 600 })).toBe(true);
    // The timestamp is signed: moving it forward breaks the signature.
    const moved = header.replace(`t=${T}`, `t=${T + 1000}`);
    expect(verifyWebhookSignature(SECRET, moved, BODY, { now: at(T + 1000) })).toBe(false);
  });

  it('refuses another secret', () => {
    const header = signWebhook('whsec-other-0123456789abcdef', BODY, T);
    expect(verifyWebhookSignature(SECRET, header, BODY, { now: at(T) })).toBe(false);
  });

  it('accepts any one matching v1 (secret rotation) and refuses malformed headers', () => {
    const good = signWebhook(SECRET, BODY, T).split(',')[1];
    const other = signWebhook('whsec-old-0123456789abcdef', BODY, T).split(',')[1];
    expect(verifyWebhookSignature(SECRET, `t=${T},${other},${good}`, BODY, { now: at(T) })).toBe(true);
    for (const header of [undefined, '', 'garbage', `t=${T}`, good, `t=abc,${good}`, `t=${T},v1=zz`, `t=${T},v0=${good.slice(3)}`]) {
      expect(verifyWebhookSignature(SECRET, header, BODY, { now: at(T) }), String(header)).toBe(false);
    }
    expect(verifyWebhookSignature('', signWebhook('', BODY, T), BODY, { now: at(T) })).toBe(false);
  });
});
