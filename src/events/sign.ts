/**
 * events/sign — the webhook signature: `X-Halcyon-Signature: sha256=<hex
 * HMAC-SHA256(secret, "<timestamp>.<raw body>")>` beside `X-Halcyon-Timestamp:
 * <unix seconds>`, made fresh for each attempt. Pure: the signer and the check
 * a receiver runs (docs/events.md shows the same check in a few lines).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TIMESTAMP_HEADER = 'x-halcyon-timestamp';
export const SIGNATURE_HEADER = 'x-halcyon-signature';

/** The signature header's value for `body` sent at `timestamp` (unix seconds). */
export function sign(secret: string, timestamp: number, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;
}

/**
 * Whether a received batch is ours and fresh: the signature matches the raw body and timestamp, and the
 * timestamp is within `toleranceSec` of `nowSec` (a replayed old request is refused).
 */
export function verify(secret: string, timestamp: string | undefined, signature: string | undefined, body: string | Buffer,
  nowSec: number, toleranceSec = 300): boolean {
  if (timestamp === undefined || signature === undefined || !/^\d{1,12}$/.test(timestamp)) return false;
  if (Math.abs(nowSec - Number(timestamp)) > toleranceSec) return false;
  const want = Buffer.from(sign(secret, Number(timestamp), body));
  const got = Buffer.from(signature);
  return want.length === got.length && timingSafeEqual(want, got);
}
