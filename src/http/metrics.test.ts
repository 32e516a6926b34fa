import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topN } from './metrics.js';

test('topN keeps the n largest by name and sums the rest as "other"', () => {
  const m = new Map([['a', 5], ['b', 1], ['c', 3], ['d', 2]]);
  assert.deepEqual([...topN(m, 2)], [['a', 5], ['c', 3], ['other', 3]]);
  assert.deepEqual([...topN(m, 4)], [['a', 5], ['c', 3], ['d', 2], ['b', 1]]);
  assert.deepEqual([...topN(new Map(), 20)], []);
});
