/**
 * Tests of the SQLite queue store: round trips, group commit, atomic failure,
 * claiming (I2), outcomes (I1), housekeeping and reopen. Each test gets its
 * own temporary data directory. Crash durability is in test/queue/crash.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HalcyonError } from '../../errors.js';
import type { NewMessage, NewRecipient } from '../model.js';
import { openSqliteQueue, SPOOL_MIN_BYTES, type SqliteQueue } from './store.js';

const T0 = 1_700_000_000_000;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'halcyon-queue-'));
}

function message(over: Partial<NewMessage> = {}, recipients: NewRecipient[] = [{ address: 'bob@example.test', destination: 'example.test' }]): NewMessage {
  return {
    sender: 'alice@sender.test',
    params: { smtputf8: false },
    receivedAt: T0,
    trace: { clientIp: '127.0.0.1', clientHelo: 'client.test', protocol: 'ESMTP' },
    body: Buffer.from('Subject: hi\r\n\r\nhello\r\n'),
    recipients,
    ...over,
  };
}

async function withStore(fn: (store: SqliteQueue, dir: string) => Promise<void>, now = () => T0): Promise<void> {
  const dir = tempDir();
  const store = await openSqliteQueue({ dataDir: dir, clock: now });
  try {
    await fn(store, dir);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const reply = { code: 250, enhanced: '2.0.0', text: 'ok', host: 'mx.example.test[127.0.0.1]:25' };
const lease = (now: number, limit = 100) => ({ now, limit, owner: 'w1', leaseUntil: now + 60_000 });

describe('SqliteQueue enqueue and reads', () => {
  test('round-trips message, params, trace, body, orcpt and notify', () => withStore(async (store) => {
    const body = Buffer.from([0, 1, 2, 255, 13, 10, 46, 13, 10]);
    const id = await store.messages.enqueue(message({
      sender: '',
      params: { size: 1234, body: '8BITMIME', smtputf8: true, ret: 'HDRS', envid: 'env+1' },
      trace: { clientIp: '::1', clientHelo: 'h', protocol: 'ESMTPSA', authUser: 'u', tls: 'TLSv1.3', listener: 'sub' },
      body,
      dsnFor: 'ABC',
    }, [
      { address: 'a@Example.TEST', orcpt: 'rfc822;a@example.test', notify: ['FAILURE', 'DELAY'], destination: 'example.test' },
      { address: 'b@other.test', notify: 'NEVER', destination: 'other.test' },
    ]));
    assert.match(id, /^[0-9A-HJKMNP-TV-Z]{16}$/);
    assert.deepEqual(await store.messages.getMessage(id), {
      id, sender: '', params: { size: 1234, body: '8BITMIME', smtputf8: true, ret: 'HDRS', envid: 'env+1' },
      receivedAt: T0, size: body.length, held: false, dsnFor: 'ABC',
      trace: { clientIp: '::1', clientHelo: 'h', protocol: 'ESMTPSA', authUser: 'u', tls: 'TLSv1.3', listener: 'sub' },
    });
    assert.deepEqual(await store.messages.getBody(id), body);
    const rcpts = await store.recipients.getRecipients(id);
    assert.equal(rcpts.length, 2);
    assert.deepEqual(rcpts[0], {
      id: rcpts[0]!.id, messageId: id, address: 'a@Example.TEST', orcpt: 'rfc822;a@example.test',
      notify: ['FAILURE', 'DELAY'], destination: 'example.test', state: 'queued', attempts: 0,
      nextAttemptAt: T0, delayNotified: false, dsnDone: false, updatedAt: T0,
    });
    assert.equal(rcpts[1]!.notify, 'NEVER');
    assert.equal(rcpts[1]!.orcpt, undefined);
    assert.equal(await store.messages.getMessage('NOPE'), undefined);
    await assert.rejects(store.messages.getBody('NOPE'), { code: 'HAL_ERR_QUEUE_NOT_FOUND' });
  }));

  test('honours a pre-assigned id from newId() and rejects a duplicate alone', () => withStore(async (store) => {
    const id = store.messages.newId();
    assert.equal(await store.messages.enqueue(message({ id })), id);
    const [dup, other] = await Promise.allSettled([store.messages.enqueue(message({ id })), store.messages.enqueue(message())]);
    assert.equal(dup.status, 'rejected');
    assert.equal(other.status, 'fulfilled');
    assert.equal((await store.recipients.counts()).messages, 2);
  }));

  test('200 concurrent enqueues get distinct ids and survive close and reopen', async () => {
    const dir = tempDir();
    try {
      let store = await openSqliteQueue({ dataDir: dir });
      const ids = await Promise.all(Array.from({ length: 200 }, (_, i) =>
        store.messages.enqueue(message({ body: Buffer.from(`body ${i}\r\n`) }))));
      assert.equal(new Set(ids).size, 200);
      assert.deepEqual([...ids].sort(), ids, 'ids sort in the order they were made');
      await store.close();
      store = await openSqliteQueue({ dataDir: dir });
      for (const [i, id] of ids.entries()) assert.equal((await store.messages.getBody(id)).toString(), `body ${i}\r\n`);
      assert.equal((await store.recipients.counts()).messages, 200);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('group commit writes concurrent enqueues in few transactions', () => withStore(async (store) => {
    const before = store.stats.enqueueCommits;
    await Promise.all(Array.from({ length: 100 }, () => store.messages.enqueue(message())));
    const commits = store.stats.enqueueCommits - before;
    assert.ok(commits >= 1 && commits <= 5, `expected few commits, got ${commits}`);
    // Sequential enqueues cannot share a commit: the counter does count transactions.
    for (let i = 0; i < 3; i++) await store.messages.enqueue(message());
    assert.equal(store.stats.enqueueCommits - before, commits + 3);
  }));

  test('a failing write rejects the whole batch with HAL_ERR_QUEUE_WRITE and stores none of it', async () => {
    const dir = tempDir();
    // A 200 KiB cap: the schema fits, 20 bodies just small enough to stay inline do not (SQLITE_FULL).
    const store = await openSqliteQueue({ dataDir: dir, maxDbBytes: 200 * 1024 });
    try {
      const kept = await store.messages.enqueue(message());
      const results = await Promise.allSettled([
        store.messages.enqueue(message()),
        ...Array.from({ length: 20 }, () => store.messages.enqueue(message({ body: Buffer.alloc(SPOOL_MIN_BYTES - 1, 0x61) }))),
        store.messages.enqueue(message()),
      ]);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.ok(r.reason instanceof HalcyonError);
        assert.equal(r.reason.code, 'HAL_ERR_QUEUE_WRITE');
        assert.equal(r.reason.spec.smtp, 452);
      }
      const list = await store.recipients.listMessages({});
      assert.deepEqual(list.map((m) => m.message.id), [kept]);
      assert.equal((await store.recipients.counts()).byState.queued, 1);
      // The store still works after the failure.
      const later = await store.messages.enqueue(message());
      assert.ok(await store.messages.getMessage(later));
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('enqueue after close rejects; close flushes a pending batch', async () => {
    const dir = tempDir();
    try {
      const store = await openSqliteQueue({ dataDir: dir });
      const pending = store.messages.enqueue(message());
      await store.close();
      const id = await pending;
      await assert.rejects(store.messages.enqueue(message()), { code: 'HAL_ERR_QUEUE_WRITE' });
      const again = await openSqliteQueue({ dataDir: dir });
      assert.ok(await again.messages.getMessage(id));
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SqliteQueue claiming', () => {
  test('claimDue respects due time, held, backoff, suspension, exclusions and limit', () => withStore(async (store) => {
    const due = await store.messages.enqueue(message({}, [{ address: 'a@a.test', destination: 'a.test' }]));
    const held = await store.messages.enqueue(message({}, [{ address: 'h@a.test', destination: 'a.test' }]));
    await store.recipients.setHeld(held, true);
    await store.messages.enqueue(message({}, [{ address: 'b@b.test', destination: 'b.test' }]));
    await store.gate.putDestination({ key: 'b.test', health: 'backoff', backoffUntil: T0 + 10_000, backoffMs: 10_000, consecutiveFailures: 1, updatedAt: T0 });
    await store.messages.enqueue(message({}, [{ address: 's@s.test', destination: 's.test' }]));
    await store.gate.putDestination({ key: 's.test', health: 'suspended', backoffUntil: 0, backoffMs: 0, consecutiveFailures: 0, updatedAt: T0 });
    const later = await store.messages.enqueue(message({}, [{ address: 'c@c.test', destination: 'c.test' }]));
    const [laterRcpt] = await store.recipients.claimWaiting(later, lease(T0));
    await store.recipients.recordOutcomes([{ recipientId: laterRcpt!.id, outcome: { kind: 'deferred', reply, nextAttemptAt: T0 + 5_000, countAttempt: true } }], T0, 'w1');

    assert.deepEqual((await store.recipients.claimDue({ ...lease(T0), excludeDestinations: ['a.test'] })), []);
    const claimed = await store.recipients.claimDue(lease(T0));
    assert.deepEqual(claimed.map((r) => r.messageId), [due]);
    assert.equal(claimed[0]!.state, 'inflight');
    assert.equal((await store.recipients.getRecipients(due))[0]!.state, 'inflight');
    assert.deepEqual(await store.recipients.claimDue(lease(T0)), [], 'a claimed recipient is not claimed again');
    assert.equal(await store.recipients.nextDueAt(), T0 + 5_000);

    const afterBackoff = await store.recipients.claimDue(lease(T0 + 10_000, 1));
    assert.equal(afterBackoff.length, 1, 'limit');
    assert.equal(afterBackoff[0]!.address, 'b@b.test', 'ordered by next attempt time: due at T0 before T0+5s');
    const rest = await store.recipients.claimDue(lease(T0 + 10_000));
    assert.deepEqual(rest.map((r) => r.messageId), [later]);
    await store.recipients.setHeld(held, false);
    assert.deepEqual((await store.recipients.claimDue(lease(T0 + 10_000))).map((r) => r.messageId), [held]);
  }));

  test('two stores on one file never claim the same recipient', async () => {
    const dir = tempDir();
    const a = await openSqliteQueue({ dataDir: dir });
    const b = await openSqliteQueue({ dataDir: dir });
    try {
      await Promise.all(Array.from({ length: 300 }, (_, i) =>
        a.messages.enqueue(message({}, [{ address: `r${i}@d${i % 7}.test`, destination: `d${i % 7}.test` }]))));
      const seen = new Set<number>();
      for (let round = 0; round < 100; round++) {
        const [x, y] = await Promise.all([
          a.recipients.claimDue({ ...lease(Date.now(), 7), owner: 'a' }),
          b.recipients.claimDue({ ...lease(Date.now(), 5), owner: 'b' }),
        ]);
        if (x.length + y.length === 0) break;
        for (const r of [...x, ...y]) {
          assert.ok(!seen.has(r.id), `recipient ${r.id} claimed twice`);
          seen.add(r.id);
        }
      }
      assert.equal(seen.size, 300);
    } finally {
      await a.close();
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SqliteQueue outcomes', () => {
  test('delivered is final: a later deferral is ignored (I1); history is kept', () => withStore(async (store) => {
    const id = await store.messages.enqueue(message());
    const [r] = await store.recipients.claimDue(lease(T0));
    await store.recipients.recordOutcomes([{ recipientId: r!.id, outcome: { kind: 'deferred', reply: { code: 451, text: 'later' }, nextAttemptAt: T0 + 1000, countAttempt: true } }], T0, 'w1');
    let [row] = await store.recipients.getRecipients(id);
    assert.deepEqual([row!.state, row!.attempts, row!.nextAttemptAt], ['deferred', 1, T0 + 1000]);
    await store.recipients.claimDue(lease(T0 + 1000));
    await store.recipients.recordOutcomes([{ recipientId: r!.id, outcome: { kind: 'deferred', reply: { code: 421, text: 'busy' }, nextAttemptAt: T0 + 2000, countAttempt: false } }], T0 + 1, 'w1');
    [row] = await store.recipients.getRecipients(id);
    assert.deepEqual([row!.state, row!.attempts, row!.nextAttemptAt], ['deferred', 1, T0 + 2000]);
    await store.recipients.claimDue(lease(T0 + 2000));
    await store.recipients.recordOutcomes([{ recipientId: r!.id, outcome: { kind: 'delivered', reply } }], T0 + 2, 'w1');
    await store.recipients.recordOutcomes([{ recipientId: r!.id, outcome: { kind: 'deferred', reply: { code: 451, text: 'x' }, nextAttemptAt: T0 + 9, countAttempt: true } }], T0 + 3, 'w1');
    [row] = await store.recipients.getRecipients(id);
    assert.equal(row!.state, 'delivered');
    assert.deepEqual(row!.lastReply, reply);
    assert.equal(row!.attempts, 2);
    const history = await store.recipients.getAttempts(id);
    assert.deepEqual(history.map((h) => [h.state, h.at, h.reply?.code]), [['deferred', T0, 451], ['deferred', T0 + 1, 421], ['delivered', T0 + 2, 250]]);
    assert.equal(store.stats.ignoredOutcomes, 1);
  }));

  test('releaseNodeLeases and releaseExpiredLeases make claimed recipients due again', () => withStore(async (store) => {
    await store.messages.enqueue(message({}, [{ address: 'a@a.test', destination: 'a.test' }, { address: 'b@a.test', destination: 'a.test' }]));
    const [first] = await store.recipients.claimDue({ ...lease(T0, 1), leaseUntil: T0 + 100 });
    const [second] = await store.recipients.claimDue({ ...lease(T0, 1), leaseUntil: T0 + 500 });
    assert.equal(await store.recipients.releaseExpiredLeases(T0 + 99), 0);
    assert.equal(await store.recipients.releaseExpiredLeases(T0 + 100), 1);
    assert.deepEqual((await store.recipients.claimDue(lease(T0 + 100))).map((r) => r.id), [first!.id]);
    await store.recipients.recordOutcomes([{ recipientId: second!.id, outcome: { kind: 'delivered', reply } }], T0 + 101, 'w1');
    assert.equal(await store.recipients.releaseNodeLeases('another node', T0 + 200), 0, 'never another node\'s leases');
    assert.equal(await store.recipients.releaseNodeLeases('w1', T0 + 200), 1, 'only the still-inflight one; delivered stays');
    const states = (await store.recipients.counts()).byState;
    assert.deepEqual([states.queued, states.delivered, states.inflight], [1, 1, 0]);
  }));
});

describe('SqliteQueue housekeeping', () => {
  test('removeCompleted waits for every recipient to be final and DSNs done', () => withStore(async (store) => {
    const id = await store.messages.enqueue(message({}, [{ address: 'a@a.test', destination: 'a.test' }, { address: 'b@a.test', destination: 'a.test' }]));
    const [a, b] = await store.recipients.claimDue(lease(T0));
    await store.recipients.recordOutcomes([{ recipientId: a!.id, outcome: { kind: 'delivered', reply } }], T0, 'w1');
    assert.deepEqual(await store.recipients.removeCompleted(10), []);
    await store.recipients.recordOutcomes([{ recipientId: b!.id, outcome: { kind: 'failed', reply: { code: 550, text: 'no' } } }], T0, 'w1');
    assert.deepEqual(await store.recipients.removeCompleted(10), [], 'failed recipient still owes a DSN');
    await store.recipients.markDsn([b!.id], 'final');
    assert.deepEqual(await store.recipients.removeCompleted(10), [id]);
    assert.equal(await store.messages.getMessage(id), undefined);
    assert.deepEqual(await store.recipients.getRecipients(id), []);
    assert.deepEqual(await store.recipients.getAttempts(id), []);
    await assert.rejects(store.messages.getBody(id));
  }));

  test('flush makes deferred recipients due, by domain or message', () => withStore(async (store) => {
    const m1 = await store.messages.enqueue(message({}, [{ address: 'a@A.test', destination: 'a.test' }]));
    const m2 = await store.messages.enqueue(message({}, [{ address: 'b@b.test', destination: 'b.test' }]));
    const claimed = await store.recipients.claimDue(lease(T0));
    await store.recipients.recordOutcomes(claimed.map((r) => ({ recipientId: r.id, outcome: { kind: 'deferred' as const, reply, nextAttemptAt: T0 + 60_000, countAttempt: true } })), T0, 'w1');
    assert.equal(await store.recipients.flush({ domain: 'a.TEST', now: T0 + 1 }), 1);
    assert.equal((await store.recipients.getRecipients(m1))[0]!.nextAttemptAt, T0 + 1);
    assert.equal((await store.recipients.getRecipients(m2))[0]!.nextAttemptAt, T0 + 60_000);
    assert.equal(await store.recipients.flush({ messageId: m2, now: T0 + 2 }), 1);
    assert.equal(await store.recipients.flush({ now: T0 + 2 }), 0);
    assert.equal((await store.recipients.claimDue(lease(T0 + 2))).length, 2);
  }));

  test('setHeld, deleteMessages, counts and listMessages filters', () => withStore(async (store) => {
    const m1 = await store.messages.enqueue(message({ receivedAt: T0 - 10 }, [{ address: 'a@one.test', destination: 'one.test' }]));
    const m2 = await store.messages.enqueue(message({}, [{ address: 'b@two.test', destination: 'two.test' }, { address: 'c@one.TEST', destination: 'one.test' }]));
    assert.equal(await store.recipients.setHeld(m1, true), true);
    assert.equal(await store.recipients.setHeld('NOPE', true), false);
    assert.equal((await store.messages.getMessage(m1))!.held, true);
    assert.deepEqual((await store.recipients.listMessages({ domain: 'ONE.test' })).map((x) => x.message.id), [m1, m2]);
    assert.deepEqual((await store.recipients.listMessages({ domain: 'two.test' }))[0]!.recipients.length, 2);
    assert.deepEqual((await store.recipients.listMessages({ olderThan: T0 })).map((x) => x.message.id), [m1]);
    assert.deepEqual((await store.recipients.listMessages({ messageId: m2 })).map((x) => x.message.id), [m2]);
    assert.deepEqual((await store.recipients.listMessages({ limit: 1 })).map((x) => x.message.id), [m1]);
    assert.deepEqual(await store.recipients.listMessages({ state: 'delivered' }), []);
    assert.deepEqual(await store.recipients.counts(), { messages: 2, byState: { queued: 3, inflight: 0, delivered: 0, deferred: 0, failed: 0, expired: 0 } });
    assert.equal(await store.messages.deleteMessages([m1, 'NOPE']), 1);
    assert.equal((await store.recipients.counts()).messages, 1);
  }));

  test('destinations: put, get, list with queued counts including rowless ones', () => withStore(async (store) => {
    await store.messages.enqueue(message({}, [{ address: 'a@x.test', destination: 'x.test' }, { address: 'b@y.test', destination: 'y.test' }]));
    const row = { key: 'x.test', health: 'backoff' as const, backoffUntil: T0 + 5, backoffMs: 60_000, consecutiveFailures: 2, lastError: 'refused', updatedAt: T0 };
    await store.gate.putDestination({ key: 'z.test', health: 'ok', backoffUntil: 0, backoffMs: 0, consecutiveFailures: 0, updatedAt: T0 });
    await store.gate.putDestination({ ...row, health: 'ok' });
    await store.gate.putDestination(row);
    assert.deepEqual(await store.gate.getDestination('x.test'), { ...row, generation: 2 }, 'each put moves the generation on');
    assert.equal(await store.gate.getDestination('nope'), undefined);
    const list = await store.gate.listDestinations();
    assert.deepEqual(list.map((d) => [d.key, d.health, d.queued]), [['x.test', 'backoff', 1], ['y.test', 'ok', 1], ['z.test', 'ok', 0]]);
  }));
});
