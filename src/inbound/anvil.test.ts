import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Anvil, type RateLimits } from './anvil.js';

describe('anvil (per-client rate counters, fixed one-minute windows)', () => {
  const limits: RateLimits = { connections: 3, messages: 2, recipients: 5 };
  test('over the limit after N events in a minute; the count starts again when the window ends', () => {
    let now = 0;
    const a = new Anvil(() => limits, () => now);
    assert.deepEqual([1, 2, 3, 4].map(() => a.hit('connections', '192.0.2.1').over), [false, false, false, true]);
    now = 59_999;
    assert.equal(a.hit('connections', '192.0.2.1').over, true, 'refused attempts count too, within the window');
    now = 60_000;
    assert.deepEqual(a.hit('connections', '192.0.2.1'), { over: false, count: 1, limit: 3 });
  });
  test('keys and kinds are counted apart: another client, or messages of the same client, are unaffected', () => {
    const a = new Anvil(() => limits, () => 0);
    for (let i = 0; i < 4; i++) a.hit('connections', '192.0.2.1');
    assert.equal(a.hit('connections', '192.0.2.2').over, false);
    assert.equal(a.hit('messages', '192.0.2.1').over, false);
    assert.equal(a.hit('recipients', 'alice').count, 1);
  });
  test('0 turns a limit off (and tracks nothing); limits are read on every hit', () => {
    let l: RateLimits = { connections: 0, messages: 1, recipients: 0 };
    const a = new Anvil(() => l, () => 0);
    for (let i = 0; i < 100; i++) assert.equal(a.hit('connections', 'x').over, false);
    assert.equal(a.size, 0);
    a.hit('messages', 'x');
    assert.equal(a.hit('messages', 'x').over, true);
    l = { ...l, messages: 10 };
    assert.equal(a.hit('messages', 'x').over, false);
  });
});
