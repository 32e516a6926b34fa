/**
 * Tests of the body spool (queue/spool) on its own, and of the SQLite queue
 * keeping large bodies there: where bytes land, what survives a reopen, which
 * segments collection may remove, and salvage of spooled bodies.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERRORS, HalcyonError } from '../errors.js';
import type { NewMessage } from './model.js';
import { checkQueue } from './sqlite/check.js';
import { salvageQueue } from './sqlite/salvage.js';
import { SEGMENT_MAX_AGE_MS, STALE_MS, BodySpool } from './spool.js';
import { openSqliteQueue, SPOOL_MIN_BYTES } from './sqlite/store.js';
import { WorkerQueue } from './sqlite/worker-store.js';

/** What the queue_write_failed log line shows: the reply's text once, then what failed (it used to say it three times). */
function assertSaidOnce(err: Error): void {
  assert.equal(err.message.split(ERRORS.HAL_ERR_QUEUE_WRITE.text).length - 1, 1, err.message);
  assert.match(err.message, /spool/, err.message);
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'halcyon-spool-'));
}

function age(path: string, ms: number): void {
  const t = (Date.now() - ms) / 1000;
  utimesSync(path, t, t);
}

function message(body: Buffer): NewMessage {
  return {
    sender: 'alice@sender.test',
    params: { smtputf8: false },
    receivedAt: Date.now(),
    trace: { clientIp: '127.0.0.1', clientHelo: 'client.test', protocol: 'ESMTP' },
    body,
    recipients: [{ address: 'bob@example.test', destination: 'example.test' }],
  };
}

const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

describe('BodySpool', () => {
  test('a batch lands back to back in one segment and reads back byte for byte', () => {
    const dir = tempDir();
    const spool = new BodySpool(dir);
    try {
      const bodies = [bytes(100, 1), bytes(0, 2), bytes(70_000, 3)];
      const at = spool.append(bodies);
      assert.equal(new Set(at.map((l) => l.segment)).size, 1);
      assert.deepEqual(at.map((l) => [l.offset, l.length]), [[0, 100], [100, 0], [100, 70_000]]);
      const more = spool.append([bytes(5, 4)]);
      assert.equal(more[0]!.offset, 70_100, 'the next batch goes after the last');
      at.forEach((l, i) => assert.deepEqual(spool.read(l), bodies[i]));
      assert.deepEqual(spool.read(more[0]!), bytes(5, 4));
    } finally {
      spool.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a new segment after the rotation age; a missing segment is a typed error', () => {
    const dir = tempDir();
    let now = 1_000_000;
    const spool = new BodySpool(dir, () => now);
    try {
      const [a] = spool.append([bytes(10, 1)]);
      now += SEGMENT_MAX_AGE_MS;
      const [b] = spool.append([bytes(10, 2)]);
      assert.notEqual(a!.segment, b!.segment);
      assert.throws(() => spool.read({ segment: 'seg-0-1-00000000.dat', offset: 0, length: 1 }),
        (e: unknown) => e instanceof HalcyonError && e.code === 'HAL_ERR_QUEUE_NOT_FOUND');
      assert.throws(() => spool.read({ ...b!, length: 11 }), /ends before/);
    } finally {
      spool.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('collect removes only unreferenced segments that are stale and not being written', () => {
    const dir = tempDir();
    let now = Date.now() - 3 * SEGMENT_MAX_AGE_MS;
    const spool = new BodySpool(dir, () => now);
    try {
      const [old] = spool.append([bytes(10, 1)]); // will be referenced
      now += SEGMENT_MAX_AGE_MS;
      const [orphan] = spool.append([bytes(10, 2)]);
      now += SEGMENT_MAX_AGE_MS;
      const [fresh] = spool.append([bytes(10, 3)]);
      now += SEGMENT_MAX_AGE_MS;
      const [current] = spool.append([bytes(10, 4)]);
      for (const l of [old!, orphan!, current!]) age(join(spool.dir, l.segment), STALE_MS + 1000);
      // 'fresh' was written just now (its mtime is real time): another writer may still commit rows into it.
      const removed = spool.collect(new Set([old!.segment]));
      assert.equal(removed, 1);
      assert.deepEqual(spool.segments().sort(), [old!.segment, fresh!.segment, current!.segment].sort());
      assert.ok(!existsSync(join(spool.dir, orphan!.segment)));
    } finally {
      spool.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SQLite queue with spooled bodies', () => {
  test('a large body goes to the spool and a small one stays inline; both survive a reopen', async () => {
    const dir = tempDir();
    try {
      const big = bytes(SPOOL_MIN_BYTES + 1, 7);
      const small = bytes(SPOOL_MIN_BYTES - 1, 8);
      let q = await openSqliteQueue({ dataDir: dir });
      const idBig = await q.messages.enqueue(message(big));
      const idSmall = await q.messages.enqueue(message(small));
      await q.close();

      const db = new Database(join(dir, 'queue', 'queue.db'), { readonly: true });
      const rows = db.prepare('SELECT message_id, length(data) AS inline, segment, seg_length FROM bodies').all() as
        { message_id: string; inline: number; segment: string | null; seg_length: number | null }[];
      db.close();
      const byId = new Map(rows.map((r) => [r.message_id, r]));
      assert.equal(byId.get(idBig)!.inline, 0);
      assert.equal(byId.get(idBig)!.seg_length, big.length);
      assert.equal(byId.get(idSmall)!.segment, null);
      assert.equal(byId.get(idSmall)!.inline, small.length);

      q = await openSqliteQueue({ dataDir: dir });
      assert.deepEqual(await q.messages.getBody(idBig), big);
      assert.deepEqual(await q.messages.getBody(idSmall), small);
      await q.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a spool that cannot be written rejects the whole batch with HAL_ERR_QUEUE_WRITE and stores none of it', async () => {
    const dir = tempDir();
    try {
      const q = await openSqliteQueue({ dataDir: dir });
      const kept = await q.messages.enqueue(message(bytes(100, 1)));
      writeFileSync(join(dir, 'queue', 'spool'), 'not a directory'); // mkdir of the spool fails
      const results = await Promise.allSettled([
        q.messages.enqueue(message(bytes(100, 2))),
        q.messages.enqueue(message(bytes(SPOOL_MIN_BYTES, 3))),
      ]);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.ok(r.reason instanceof HalcyonError && r.reason.code === 'HAL_ERR_QUEUE_WRITE');
        assertSaidOnce(r.reason);
      }
      assert.deepEqual((await q.recipients.listMessages({})).map((m) => m.message.id), [kept]);
      await q.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('through the queue thread too, a failed spool write says "Insufficient system storage" once, then what failed', async () => {
    const dir = tempDir();
    const q = await WorkerQueue.open({ dataDir: dir });
    try {
      writeFileSync(join(dir, 'queue', 'spool'), 'not a directory');
      const r = await q.messages.enqueue(message(bytes(SPOOL_MIN_BYTES, 4))).then(() => undefined, (err: unknown) => err);
      assert.ok(r instanceof HalcyonError && r.code === 'HAL_ERR_QUEUE_WRITE', String(r));
      assertSaidOnce(r);
    } finally {
      await q.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a deleted message frees its segment once the segment is stale; a live one keeps it', async () => {
    const dir = tempDir();
    try {
      const q = await openSqliteQueue({ dataDir: dir });
      const gone = await q.messages.enqueue(message(bytes(SPOOL_MIN_BYTES, 1)));
      await q.close(); // closes the segment: the next open writes a new one
      const q2 = await openSqliteQueue({ dataDir: dir });
      const kept = await q2.messages.enqueue(message(bytes(SPOOL_MIN_BYTES, 2)));
      const segs = readdirSync(join(dir, 'queue', 'spool'));
      assert.equal(segs.length, 2);
      for (const s of segs) age(join(dir, 'queue', 'spool', s), STALE_MS + 1000);
      assert.equal(q2.collectSpool(), 0, 'both segments are referenced');
      await q2.messages.deleteMessages([gone]);
      await q2.messages.deleteMessages([kept]);
      assert.equal(q2.collectSpool(), 1, "the first segment goes; the second is this queue's current one");
      await q2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('salvage keeps a spooled body it can read and reports one whose segment is gone', async () => {
    const dir = tempDir();
    try {
      const q = await openSqliteQueue({ dataDir: dir });
      const ok = await q.messages.enqueue(message(bytes(SPOOL_MIN_BYTES, 1)));
      await q.close();
      const q2 = await openSqliteQueue({ dataDir: dir });
      const lostId = await q2.messages.enqueue(message(bytes(SPOOL_MIN_BYTES, 2)));
      await q2.close();
      // Remove the segment that holds lostId's body.
      const db = new Database(join(dir, 'queue', 'queue.db'), { readonly: true });
      const seg = (db.prepare('SELECT segment FROM bodies WHERE message_id = ?').pluck().get(lostId)) as string;
      db.close();
      rmSync(join(dir, 'queue', 'spool', seg));
      const check = checkQueue(dir);
      assert.equal(check.status, 'damaged', 'queue check names the missing segment');
      assert.match(check.problems.join('\n'), new RegExp(`spool segment ${seg} holding 1 message body is missing`));

      const report = salvageQueue(dir);
      assert.equal(report.messages, 1);
      assert.deepEqual(report.lost.map((l) => [l.id, l.why.startsWith('body unreadable')]), [[lostId, true]]);
      const q3 = await openSqliteQueue({ dataDir: dir });
      assert.deepEqual(await q3.messages.getBody(ok), bytes(SPOOL_MIN_BYTES, 1));
      await q3.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
