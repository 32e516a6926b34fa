/**
 * queue/group-commit: what is added in one turn is written as one batch, cut
 * by count and size; the batch's promises settle together (resolved after
 * the write, rejected all when it fails), an entry refused alone rejects
 * alone; a synchronous and an asynchronous write behave the same.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HalcyonError } from '../errors.js';
import { GroupCommit, type Entry } from './group-commit.js';

const settled = (ps: Promise<string>[]) => Promise.all(ps.map((p) => p.then((id) => ({ ok: id }), (e: unknown) => ({ err: (e as Error).message }))));

for (const mode of ['sync', 'async'] as const) {
  describe(`GroupCommit (${mode} write)`, () => {
    const make = (over: { maxItems?: number; maxBytes?: number; fail?: (batch: readonly Entry<number>[]) => boolean; refuse?: string[] } = {}) => {
      const batches: string[][] = [];
      const committed: number[] = [];
      const gc = new GroupCommit<number>({
        maxItems: over.maxItems ?? 10, ...(over.maxBytes !== undefined ? { maxBytes: over.maxBytes } : {}), sizeOf: (n) => n,
        write: (batch, refuse) => {
          const run = () => {
            for (const e of batch) if (over.refuse?.includes(e.id)) refuse(e, new Error(`refused ${e.id}`));
            if (over.fail?.(batch)) throw new Error('disk on fire');
            batches.push(batch.map((e) => e.id));
          };
          if (mode === 'sync') return run();
          return Promise.resolve().then(run);
        },
        committed: (n) => committed.push(n),
      });
      return { gc, batches, committed };
    };

    test('one turn, one batch; cut at maxItems', async () => {
      const { gc, batches, committed } = make({ maxItems: 3 });
      const r = await settled(['a', 'b', 'c', 'd', 'e'].map((id) => gc.add(id, 1)));
      assert.deepEqual(r, ['a', 'b', 'c', 'd', 'e'].map((ok) => ({ ok })));
      assert.deepEqual(batches, [['a', 'b', 'c'], ['d', 'e']]);
      assert.deepEqual(committed, [3, 2]);
    });

    test('cut before the sizes pass maxBytes; an oversized item goes alone', async () => {
      const { gc, batches } = make({ maxBytes: 10 });
      await settled([gc.add('a', 4), gc.add('b', 5), gc.add('c', 2), gc.add('big', 50), gc.add('d', 1)]);
      assert.deepEqual(batches, [['a', 'b'], ['c'], ['big'], ['d']]);
    });

    test('a failed write rejects its whole batch as HAL_ERR_QUEUE_WRITE, and only that batch', async () => {
      const { gc, batches } = make({ maxItems: 2, fail: (b) => b.some((e) => e.id === 'c') });
      const ps = ['a', 'b', 'c', 'd', 'e'].map((id) => gc.add(id, 1));
      const errs = await Promise.all(ps.map((p) => p.then(() => undefined, (e: unknown) => e)));
      assert.deepEqual(errs.map((e) => (e instanceof HalcyonError ? e.code : e)), [undefined, undefined, 'HAL_ERR_QUEUE_WRITE', 'HAL_ERR_QUEUE_WRITE', undefined]);
      assert.match((errs[2] as Error).message, /disk on fire/);
      assert.deepEqual(batches, [['a', 'b'], ['e']]);
    });

    test('an entry refused alone rejects alone; the rest of its batch is stored', async () => {
      const { gc, committed } = make({ refuse: ['b'] });
      const r = await settled(['a', 'b', 'c'].map((id) => gc.add(id, 1)));
      assert.deepEqual(r, [{ ok: 'a' }, { err: 'refused b' }, { ok: 'c' }]);
      assert.deepEqual(committed, [2]);
    });

    test('flush writes what waits now, without waiting for the next turn', async () => {
      const { gc, batches } = make();
      const p = gc.add('a', 1);
      gc.flush();
      if (mode === 'sync') assert.deepEqual(batches, [['a']]);
      await Promise.all(gc.inFlight);
      assert.deepEqual(batches, [['a']]);
      assert.equal(await p, 'a');
    });
  });
}

describe('GroupCommit: maxInFlight and retrySingly', () => {
  test('with maxInFlight 1, what is added while a batch is in flight waits and goes as one batch after it', async () => {
    const batches: string[][] = [];
    let release: () => void = () => undefined;
    const first = new Promise<void>((r) => { release = r; });
    const gc = new GroupCommit<number>({
      maxItems: 10, maxInFlight: 1,
      write: async (batch) => {
        batches.push(batch.map((e) => e.id));
        if (batches.length === 1) await first;
      },
    });
    const a = gc.add('a', 1);
    await new Promise((r) => setImmediate(r));
    assert.equal(gc.inFlight.size, 1);
    // Three more turns while 'a' is in flight: nothing else is written yet.
    const rest: Promise<string>[] = [];
    for (const id of ['b', 'c', 'd']) {
      rest.push(gc.add(id, 1));
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(batches, [['a']]);
    release();
    assert.deepEqual(await Promise.all([a, ...rest]), ['a', 'b', 'c', 'd']);
    assert.deepEqual(batches, [['a'], ['b', 'c', 'd']]);
  });

  test('flush writes every waiting batch whatever is in flight (what close() needs)', async () => {
    const batches: string[][] = [];
    let release: () => void = () => undefined;
    const first = new Promise<void>((r) => { release = r; });
    const gc = new GroupCommit<number>({
      maxItems: 10, maxInFlight: 1,
      write: async (batch) => {
        batches.push(batch.map((e) => e.id));
        if (batches.length === 1) await first;
      },
    });
    const a = gc.add('a', 1);
    await new Promise((r) => setImmediate(r));
    const b = gc.add('b', 1);
    gc.flush();
    assert.deepEqual(batches, [['a'], ['b']]);
    release();
    assert.deepEqual(await Promise.all([a, b]), ['a', 'b']);
  });

  test('a failed batch that retrySingly accepts is written again item by item: only the item at fault fails', async () => {
    const batches: string[][] = [];
    const gc = new GroupCommit<number>({
      maxItems: 10, retrySingly: (err) => (err as Error).message === 'bad row',
      write: async (batch) => {
        batches.push(batch.map((e) => e.id));
        if (batch.some((e) => e.id === 'bad')) throw new Error('bad row');
      },
    });
    const r = await settled(['a', 'bad', 'c'].map((id) => gc.add(id, 1)));
    assert.deepEqual([r[0], r[2]], [{ ok: 'a' }, { ok: 'c' }]);
    assert.ok('err' in r[1]! && /bad row/.test(r[1].err));
    assert.deepEqual(batches, [['a', 'bad', 'c'], ['a'], ['bad'], ['c']]);
  });

  test('an error retrySingly does not accept fails the whole batch, written once', async () => {
    const batches: string[][] = [];
    const gc = new GroupCommit<number>({
      maxItems: 10, retrySingly: () => false,
      write: async (batch) => {
        batches.push(batch.map((e) => e.id));
        throw new Error('connection lost');
      },
    });
    const r = await settled(['a', 'b'].map((id) => gc.add(id, 1)));
    assert.ok(r.every((x) => 'err' in x && /connection lost/.test(String(x.err))));
    assert.deepEqual(batches, [['a', 'b']]);
  });
});
