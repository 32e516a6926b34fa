import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { destinationFailed, retryDelay } from './retry.js';

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

describe('destination health', () => {
  test('failure → backoff, doubling per failed probe up to the max', () => {
    let row = destinationFailed(undefined, 'd', 0, 'refused', s);
    assert.equal(row.health, 'backoff');
    const steps = [row.backoffMs];
    for (let i = 0; i < 8; i++) {
      row = destinationFailed(row, 'd', row.backoffUntil, 'refused', s);
      steps.push(row.backoffMs);
    }
    assert.deepEqual(steps.map((x) => x / 60_000), [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    assert.equal(row.consecutiveFailures, 9);
  });
});
