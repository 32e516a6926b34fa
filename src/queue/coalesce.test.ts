/** Tests of coalesced lookups: one fetch per turn with every key of that turn, the same answer or failure for each caller. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coalesced } from './coalesce.js';

test('keys asked in one turn go to one fetch; the next turn asks again', async () => {
  const fetched: string[][] = [];
  const ask = coalesced(async (keys: readonly string[]) => {
    fetched.push([...keys]);
    return new Map(keys.map((k) => [k, k.toUpperCase()]));
  });
  const [a, b, c] = await Promise.all([ask('a'), ask('b'), ask('c')]);
  assert.equal(a.get('a'), 'A');
  assert.equal(b.get('b'), 'B');
  assert.equal(c.get('c'), 'C');
  assert.deepEqual(fetched, [['a', 'b', 'c']]);
  assert.equal((await ask('d')).get('d'), 'D');
  assert.deepEqual(fetched, [['a', 'b', 'c'], ['d']]);
});

test('a failed fetch fails every caller of that turn, and only them', async () => {
  let fail = true;
  const ask = coalesced(async (keys: readonly string[]) => {
    if (fail) throw new Error('unreadable');
    return keys.length;
  });
  const got = await Promise.allSettled([ask('a'), ask('b')]);
  assert.deepEqual(got.map((g) => g.status), ['rejected', 'rejected']);
  fail = false;
  assert.equal(await ask('c'), 1);
});

test('a key asked while a fetch is running waits for the next one', async () => {
  const fetched: string[][] = [];
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => { release = r; });
  const ask = coalesced(async (keys: readonly string[]) => {
    fetched.push([...keys]);
    if (fetched.length === 1) await gate;
    return keys.join(',');
  });
  const first = ask('a');
  await new Promise((r) => setImmediate(r));
  const second = ask('b');
  release();
  assert.equal(await first, 'a');
  assert.equal(await second, 'b');
  assert.deepEqual(fetched, [['a'], ['b']]);
});
