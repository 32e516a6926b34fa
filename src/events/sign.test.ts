import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { backoffMs } from './dispatcher.js';
import { sign, verify } from './sign.js';

test('the signature is hex HMAC-SHA256 of "<timestamp>.<raw body>", as docs/events.md says', () => {
  const body = '[{"id":"e1","type":"delivered"}]';
  const want = createHmac('sha256', 's3cret').update(`1765055045.${body}`).digest('hex');
  assert.equal(sign('s3cret', 1765055045, body), `sha256=${want}`);
});

test('verify: the right secret and a fresh timestamp pass; a changed body, another secret, a stale or missing timestamp do not', () => {
  const body = Buffer.from('[{"id":"e1"}]');
  const sig = sign('k', 1000, body);
  assert.equal(verify('k', '1000', sig, body, 1000), true);
  assert.equal(verify('k', '1000', sig, body, 1299), true);
  assert.equal(verify('k', '1000', sig, body, 1301), false, 'a replay after 5 minutes');
  assert.equal(verify('k', '1000', sig, Buffer.from('[{"id":"e2"}]'), 1000), false);
  assert.equal(verify('other', '1000', sig, body, 1000), false);
  assert.equal(verify('k', '1001', sig, body, 1000), false, 'the timestamp is signed too');
  assert.equal(verify('k', undefined, sig, body, 1000), false);
  assert.equal(verify('k', '1000', 'sha256=00', body, 1000), false);
});

test('backoff per sink: 1 s after the first failure, doubling, capped at retry_max', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 50].map((n) => backoffMs(n, 60_000)), [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
  assert.equal(backoffMs(3, 2_500), 2_500);
});
