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
