/** Tests of message ids: shape, order within one millisecond and across, recoverable time. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createIdGenerator, idTime } from './ids.js';

test('ids are 16 Crockford base32 chars, strictly increasing even within one millisecond', () => {
  let now = 1_700_000_000_000;
  const next = createIdGenerator(() => now);
  const ids: string[] = [];
  for (let i = 0; i < 1000; i++) {
    if (i % 250 === 0) now += 1;
    ids.push(next());
  }
  for (const id of ids) assert.match(id, /^[0-9A-HJKMNP-TV-Z]{16}$/);
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(new Set(ids).size, ids.length);
  assert.equal(idTime(ids[0]!), 1_700_000_000_001);
});

test('a clock stepping backwards does not break the order', () => {
  let now = 2_000_000_000_000;
  const next = createIdGenerator(() => now);
  const a = next();
  now -= 5_000;
  const b = next();
  assert.ok(b > a);
});

test('two lanes of one clock never make the same id, and each stays in its range', () => {
  let now = 1_700_000_000_000;
  const a = createIdGenerator(() => now, { index: 0, lanes: 2 });
  const b = createIdGenerator(() => now, { index: 1, lanes: 2 });
  const ids = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    if (i % 5_000 === 0) now += 1;
    ids.add(a());
    ids.add(b());
  }
  assert.equal(ids.size, 40_000);
  const tailOf = (id: string) => [...id.slice(10)].reduce((v, ch) => v * 32 + '0123456789ABCDEFGHJKMNPQRSTVWXYZ'.indexOf(ch), 0);
  assert.ok(tailOf(a()) < 2 ** 29 && tailOf(b()) >= 2 ** 29);
});
