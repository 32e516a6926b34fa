import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { destinationFailed } from './backoff.js';

const s = { backoffMs: 60_000, backoffMaxMs: 3_600_000 };

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
