import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { retryDelay } from './retry.js';

const s = { retryInitialMs: 300_000, retryMaxMs: 4 * 3_600_000, backoffMs: 60_000, backoffMaxMs: 3_600_000 };

describe('recipient retry schedule', () => {
  test('starts at retry_initial and doubles up to retry_max', () => {
    const mid = () => 0.5; // no jitter
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map((n) => retryDelay(n, s, mid) / 60_000), [5, 10, 20, 40, 80, 160, 240, 240]);
  });
  test('jitter stays within ±10 %', () => {
    assert.equal(retryDelay(1, s, () => 0), 270_000);
    assert.equal(retryDelay(1, s, () => 1), 330_000);
  });
});
