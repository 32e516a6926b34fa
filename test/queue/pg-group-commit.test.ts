/**
 * The PostgreSQL queue's group commit (queue/group-commit, pg/messages,
 * pg/outcomes), on a database of its own: enqueues and recordOutcomes calls
 * made in one event-loop turn go to the server as ONE statement each (counted
 * on the pool), every caller gets its own answer after that commit, and a row
 * the server refuses (a NUL in a text column, a NaN for a bigint) fails the
 * call that brought it and no other. Without event sinks (the one-statement
 * paths), and with them (one transaction: outbox and suppression rows).
 * Skips with the reason when PostgreSQL does not answer (fails under
 * HALCYON_REQUIRE_INTEROP=1).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { HalcyonError } from '../../src/errors.js';
import { QueueHealth } from '../../src/queue/health.js';
import { createPool, migratePg, PgDb } from '../../src/queue/pg/db.js';
import { PgQueue } from '../../src/queue/pg/store.js';
import type { RecipientOutcome } from '../../src/queue/model.js';
import { createTestDatabase, pgUnavailable, type TestDatabase } from '../support/postgres.js';
import { EVENT_ROUTES, message, reply, T0 } from './contract/harness.js';
import type { EventRoutes, HalcyonEvent } from '../../src/queue/event.js';

const skip = await pgUnavailable();

const databases: TestDatabase[] = [];
after(async () => {
  for (const db of databases) await db.drop();
});

/** A queue on a database of its own whose pool counts the statements it sends by their opening words. */
async function countedQueue(events?: EventRoutes): Promise<{ queue: PgQueue; sent: string[] }> {
  const db = await createTestDatabase();
  databases.push(db);
  const pool = createPool({ url: db.url, poolSize: 4 });
  await migratePg(pool);
  const sent: string[] = [];
  const query = pool.query.bind(pool) as (...a: unknown[]) => unknown;
  // The one-statement writes go through pool.query (pg/db's `one`); the spy keeps the call as it was.
  (pool as unknown as { query: (...a: unknown[]) => unknown }).query = (...a: unknown[]) => {
    if (typeof a[0] === 'string') sent.push(a[0].replace(/\s+/g, ' ').trim().slice(0, 40));
    return query(...a);
  };
  // Every statement and transaction takes a connection from the pool (pool.query does too): one per batch.
  const connect = pool.connect.bind(pool) as (...a: unknown[]) => unknown;
  (pool as unknown as { connect: (...a: unknown[]) => unknown }).connect = (...a: unknown[]) => {
    sent.push('CONNECT');
    return connect(...a);
  };
  let now = T0;
  const queue = new PgQueue(new PgDb(pool, () => now++, new QueueHealth({ probe: async () => undefined }), events));
  return { queue, sent };
}

const delivered = (recipientId: number): RecipientOutcome => ({ recipientId, outcome: { kind: 'delivered', reply } });

test('enqueues and outcomes of one turn: one statement each, every caller answered with its own', { skip }, async () => {
  const { queue, sent } = await countedQueue();
  try {
    const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => queue.messages.enqueue(message([{ address: `r${i}@example.test`, destination: 'example.test' }]))));
    assert.equal(new Set(ids).size, 12);
    assert.equal(sent.filter((s) => s.startsWith('WITH m AS ( INSERT INTO messages')).length, 1);
    const claimed = await queue.recipients.claimDue({ now: T0 + 1_000, limit: 100, owner: 'node-a', leaseUntil: T0 + 60_000 });
    assert.equal(claimed.length, 12);
    sent.length = 0;
    // Each call names one recipient; the last names one that another call of the turn names too (the first counts).
    const calls = claimed.map((r) => queue.recipients.recordOutcomes([delivered(r.id)], T0 + 2_000, 'node-a'));
    calls.push(queue.recipients.recordOutcomes([delivered(claimed[0]!.id)], T0 + 2_000, 'node-a'));
    const applied = await Promise.all(calls);
    assert.deepEqual(applied.slice(0, 12), claimed.map((r) => [r.id]));
    assert.deepEqual(applied[12], []);
    assert.equal(sent.filter((s) => s.startsWith('WITH o AS ( SELECT * FROM unnest')).length, 1);
    const counts = await queue.recipients.counts();
    assert.equal(counts.byState.delivered, 12);
    assert.equal(counts.byState.inflight, 0);
  } finally {
    await queue.close();
  }
});

test('a row the server refuses fails its own enqueue only; the others of the turn are stored', { skip }, async () => {
  const { queue } = await countedQueue();
  try {
    const got = await Promise.allSettled([
      queue.messages.enqueue(message(undefined, { sender: 'a@sender.test' })),
      queue.messages.enqueue(message(undefined, { sender: 'bad\u0000@sender.test' })), // text cannot hold NUL
      queue.messages.enqueue(message(undefined, { sender: 'c@sender.test' })),
    ]);
    assert.deepEqual(got.map((g) => g.status), ['fulfilled', 'rejected', 'fulfilled']);
    const why = (got[1] as PromiseRejectedResult).reason as HalcyonError;
    assert.equal(why.code, 'HAL_ERR_QUEUE_WRITE');
    for (const g of [got[0], got[2]]) {
      const id = (g as PromiseFulfilledResult<string>).value;
      assert.ok(await queue.messages.getMessage(id), `message ${id} stored`);
    }
    assert.equal((await queue.recipients.counts()).messages, 2);
  } finally {
    await queue.close();
  }
});

test('an outcome the server refuses fails its own call only; the others of the turn are applied', { skip }, async () => {
  const { queue } = await countedQueue();
  try {
    await Promise.all([0, 1, 2].map((i) => queue.messages.enqueue(message([{ address: `r${i}@example.test`, destination: 'example.test' }]))));
    const [a, b, c] = await queue.recipients.claimDue({ now: T0 + 1_000, limit: 10, owner: 'node-a', leaseUntil: T0 + 60_000 });
    const got = await Promise.allSettled([
      queue.recipients.recordOutcomes([delivered(a!.id)], T0 + 2_000, 'node-a'),
      queue.recipients.recordOutcomes([{ recipientId: b!.id, outcome: { kind: 'deferred', reply, nextAttemptAt: Number.NaN, countAttempt: true } }], T0 + 2_000, 'node-a'),
      queue.recipients.recordOutcomes([delivered(c!.id)], T0 + 2_000, 'node-a'),
    ]);
    assert.deepEqual(got.map((g) => g.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.deepEqual((got[0] as PromiseFulfilledResult<number[]>).value, [a!.id]);
    assert.deepEqual((got[2] as PromiseFulfilledResult<number[]>).value, [c!.id]);
    const states = new Map((await queue.recipients.listMessages({})).flatMap((m) => m.recipients.map((r) => [r.id, r.state])));
    assert.deepEqual([states.get(a!.id), states.get(b!.id), states.get(c!.id)], ['delivered', 'inflight', 'delivered']);
  } finally {
    await queue.close();
  }
});

test('with event sinks: the calls of a turn in one transaction, each outcome\'s event at its own call\'s time, a failure suppressed', { skip }, async () => {
  const { queue, sent } = await countedQueue(EVENT_ROUTES);
  try {
    await Promise.all([0, 1, 2].map((i) => queue.messages.enqueue(message([{ address: `r${i}@example.test`, destination: 'example.test' }]))));
    const [a, b, c] = await queue.recipients.claimDue({ now: T0 + 1_000, limit: 10, owner: 'node-a', leaseUntil: T0 + 60_000 });
    sent.length = 0;
    const failed = { code: 550, enhanced: '5.1.1', text: 'no such user', host: reply.host, class: 'InvalidRecipient' as const };
    const got = await Promise.all([
      queue.recipients.recordOutcomes([delivered(a!.id)], T0 + 2_000, 'node-a'),
      queue.recipients.recordOutcomes([{ recipientId: b!.id, outcome: { kind: 'failed', reply: failed, suppressUntil: T0 + 86_400_000 } }], T0 + 3_000, 'node-a'),
      queue.recipients.recordOutcomes([delivered(c!.id)], T0 + 4_000, 'node-a'),
    ]);
    assert.deepEqual(got, [[a!.id], [b!.id], [c!.id]]);
    // One transaction for the three calls (its statements go through the client it took, not pool.query).
    assert.deepEqual(sent, ['CONNECT']);
    const rows = await queue.events.claimEvents('all', { now: T0 + 10_000, limit: 100, owner: 'reader', leaseUntil: T0 + 40_000 });
    const events = rows.map((r) => JSON.parse(r.body) as HalcyonEvent).filter((e) => e.type !== 'received');
    const byRecipient = new Map(events.map((e) => [e.recipient, e]));
    assert.deepEqual([...byRecipient.keys()].sort(), [a!.address, b!.address, c!.address].sort());
    assert.equal(byRecipient.get(a!.address)?.type, 'delivered');
    assert.equal(byRecipient.get(b!.address)?.type, 'bounced');
    assert.equal(byRecipient.get(a!.address)?.time, new Date(T0 + 2_000).toISOString());
    assert.equal(byRecipient.get(b!.address)?.time, new Date(T0 + 3_000).toISOString());
    assert.equal(byRecipient.get(c!.address)?.time, new Date(T0 + 4_000).toISOString());
    assert.ok((await queue.suppressions.suppressed([b!.address], T0 + 5_000)).size === 1, 'the failed address is suppressed');
  } finally {
    await queue.close();
  }
});
