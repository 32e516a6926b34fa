import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HalcyonError } from '../../src/errors.js';
import type { NewMessage } from '../../src/queue/model.js';
import { openSqliteQueue } from '../../src/queue/sqlite/store.js';
import { WorkerQueue } from '../../src/queue/sqlite/worker-store.js';

const msg = (i: number, at: number): NewMessage => ({
  sender: `s${i}@example.test`, params: { smtputf8: false, ret: 'HDRS' }, receivedAt: at,
  trace: { clientIp: '127.0.0.1', clientHelo: 'c', protocol: 'ESMTP' },
  body: Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`),
  recipients: [{ address: `r${i}@example.test`, destination: 'example.test', notify: ['FAILURE'] }],
});

describe('WorkerQueue (SQLite in a worker thread)', () => {
  test('the calls of one turn cross together; one that cannot be cloned fails alone, the others are answered', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'halcyon-ws-'));
    const store = await WorkerQueue.open({ dataDir: dir, clock: () => 1_000_000 });
    try {
      const id = await store.messages.enqueue(msg(1, 1_000_000));
      // Same turn: a good call, one with an argument structured clone refuses (a function), a good call.
      const [before, bad, after] = await Promise.allSettled([
        store.messages.getMessage(id),
        store.messages.getMessage((() => id) as unknown as string),
        store.messages.getForDelivery(id),
      ]);
      assert.equal(before.status === 'fulfilled' && before.value?.id, id);
      assert.equal(bad.status, 'rejected');
      assert.equal(after.status === 'fulfilled' && after.value?.body.toString(), 'Subject: 1\r\n\r\nbody 1\r\n');
      assert.equal(store.health.problem, undefined, 'a refused argument is not a failed queue');
    } finally {
      await store.close();
    }
  });

  test('round trip, concurrent enqueues, Buffers back, typed errors, caller clock', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'halcyon-ws-'));
    let now = 1_000_000;
    const store = await WorkerQueue.open({ dataDir: dir, clock: () => now });
    const ids = await Promise.all(Array.from({ length: 300 }, (_, i) => store.messages.enqueue(msg(i, now))));
    assert.equal(new Set(ids).size, 300);
    const body = await store.messages.getBody(ids[7]!);
    assert.ok(Buffer.isBuffer(body));
    assert.equal(body.toString(), 'Subject: 7\r\n\r\nbody 7\r\n');
    const m = await store.messages.getMessage(ids[7]!);
    assert.equal(m?.params.ret, 'HDRS');
    await assert.rejects(store.messages.getBody('NOPE'), (e: unknown) => e instanceof HalcyonError && e.code === 'HAL_ERR_QUEUE_NOT_FOUND');
    // The fake clock reaches the store: recipients are due at the caller's "now", not the wall clock.
    assert.equal(await store.recipients.nextDueAt(), 1_000_000);
    now += 10;
    const claimed = await store.recipients.claimDue({ now, limit: 1000, owner: 't', leaseUntil: now + 1000 });
    assert.equal(claimed.length, 300);
    await store.recipients.recordOutcomes(claimed.map((r) => ({ recipientId: r.id, outcome: { kind: 'delivered', reply: { code: 250, text: 'ok' } } })), now, 't');
    assert.equal((await store.recipients.counts()).byState.delivered, 300);
    await store.close();
    // Durable: a plain store on the same file sees everything.
    const direct = await openSqliteQueue({ dataDir: dir });
    assert.equal((await direct.recipients.counts()).byState.delivered, 300);
    await direct.close();
  });

  test('bodies cross to the queue thread moved, not copied: only a handed-over body leaves the caller, large (spooled) and small alike', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'halcyon-ws-'));
    const store = await WorkerQueue.open({ dataDir: dir });
    const large = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), Buffer.alloc(100_000, 'x'), Buffer.from('\r\n')]);
    const expected = Buffer.from(large);
    const small = Buffer.from('Subject: small\r\n\r\nhi\r\n'); // a slice of Node's shared pool
    const kept = Buffer.from(large);
    const a = await store.messages.enqueue({ ...msg(1, 1), body: large }, { handOver: true });
    const b = await store.messages.enqueue({ ...msg(2, 1), body: small }, { handOver: true });
    const c = await store.messages.enqueue({ ...msg(3, 1), body: kept });
    assert.equal(large.length, 0, 'a handed-over body that owns its memory was moved');
    assert.equal(small.toString(), 'Subject: small\r\n\r\nhi\r\n', 'a pool slice is copied: the pool is not ours to move');
    assert.ok(kept.equals(expected), 'a body not handed over is left as it was');
    assert.ok((await store.messages.getBody(a)).equals(expected));
    assert.equal((await store.messages.getBody(b)).toString(), 'Subject: small\r\n\r\nhi\r\n');
    const back = await store.messages.getBody(c);
    assert.ok(back.equals(expected));
    // A read moved back from the thread is whole and writable like any Buffer.
    back[0] = 0x53;
    assert.ok((await store.messages.getBody(c)).equals(expected));
    await store.close();
  });

  test('a queue thread that stops answering fails every waiting call and every later one (one watchdog for all calls)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'halcyon-ws-'));
    const store = await WorkerQueue.open({ dataDir: dir, clock: () => 1_000_000, callTimeoutMs: 5_000 });
    // Another connection holds the write lock: the queue thread's next turn waits in SQLite's busy handler (10 s),
    // longer than the calls may wait (5 s, well above a turn's time on a loaded machine).
    const other = new Database(join(dir, 'queue', 'queue.db'));
    try {
      // Calls answered one after another keep the queue healthy (the watchdog follows the oldest waiting call).
      for (let i = 0; i < 3; i++) await store.messages.enqueue(msg(i, 1_000_000));
      assert.equal(store.health.problem, undefined);
      other.exec('BEGIN EXCLUSIVE');
      const stuck = await Promise.allSettled([store.messages.enqueue(msg(9, 1_000_000)), store.recipients.counts()]);
      for (const r of stuck) {
        assert.equal(r.status, 'rejected');
        assert.equal(((r as PromiseRejectedResult).reason as HalcyonError).code, 'HAL_ERR_QUEUE_FAILED');
      }
      assert.match((store.health.problem as HalcyonError | undefined)?.message ?? '', /no answer from the queue thread in 5000 ms/);
      await assert.rejects(store.recipients.counts(), (e: HalcyonError) => e.code === 'HAL_ERR_QUEUE_FAILED', 'a later call is refused at once');
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
      await store.close();
    }
  });

  test('a turn without its fsync (reads and leases only) is committed all the same, and the next turn is durable again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'halcyon-ws-'));
    const q = await openSqliteQueue({ dataDir: dir, clock: () => 1_000_000 });
    const other = new Database(join(dir, 'queue', 'queue.db'), { readonly: true });
    try {
      const id = await q.messages.enqueue(msg(1, 1_000_000));
      let claimed: Promise<unknown> | undefined;
      q.turn(() => { claimed = q.recipients.claimDue({ now: 1_000_000, limit: 10, owner: 'n1', leaseUntil: 1_060_000 }); }, { fsync: false });
      assert.equal(((await claimed) as unknown[]).length, 1);
      assert.deepEqual(other.prepare('SELECT state, lease_owner FROM recipients WHERE message_id = ?').get(id), { state: 'inflight', lease_owner: 'n1' }, 'another connection sees the lease');
      // The safety level the queue was opened with (FULL = 2) is back for the next turn.
      assert.equal((q as unknown as { d: { db: Database.Database } }).d.db.pragma('synchronous', { simple: true }), 2);
    } finally {
      other.close();
      await q.close();
    }
  });
});
