/**
 * The PostgreSQL queue through a real PgBouncer (test/support/pgbouncer:
 * Debian's 1.18, transaction pooling, two server connections used in turn)
 * — what `[queue] prepared_statements = false` is for:
 *
 * - with named prepared statements (the default), a statement sent twice by
 *   one client lands on a server connection that never prepared it, and the
 *   server refuses it (this shows the set-up reproduces the problem);
 * - with prepared_statements = false, a node's whole cycle works through it:
 *   migration, group-committed enqueues (and a keyed enqueueGroup), the
 *   gate's pipelined acquire, claims, delivery reads, group-committed
 *   outcomes, removal.
 *
 * Skips with the reason when PostgreSQL or PgBouncer is missing (fails
 * under HALCYON_REQUIRE_INTEROP=1).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { openPgQueue } from '../../src/queue/pg/store.js';
import { createTestDatabase, pgUnavailable, type TestDatabase } from '../support/postgres.js';
import { pgbouncerUnavailable, startPgBouncer, type PrivatePgBouncer } from '../support/pgbouncer.js';
import { message, reply, T0 } from '../queue/contract/harness.js';

const skip = (await pgUnavailable()) ?? pgbouncerUnavailable();

let db: TestDatabase;
let bouncer: PrivatePgBouncer;
before(async () => {
  if (skip) return;
  db = await createTestDatabase();
  bouncer = await startPgBouncer();
  // Until PgBouncer has its two server connections for this database (min_pool_size: within a second or so),
  // one client's transactions may all run on one: each test below needs them to alternate.
  const c = new pg.Client({ connectionString: viaBouncer() });
  await c.connect();
  try {
    const seen = new Set<number>();
    for (let i = 0; i < 100 && seen.size < 2; i++) {
      seen.add((await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(seen.size, 2, 'PgBouncer uses two server connections in turn');
  } finally {
    await c.end();
  }
});
after(async () => {
  if (skip) return;
  await bouncer.stop();
  await db.drop();
});

const viaBouncer = (): string => bouncer.urlFor(new URL(db.url).pathname.slice(1));

test('named prepared statements through PgBouncer in transaction mode: the server refuses one sooner or later', { skip }, async () => {
  // Migrated directly (prepared statements off for the migration itself: it is not what this test is about).
  const queue = await openPgQueue({ url: viaBouncer(), poolSize: 1, preparedStatements: true, migrate: false });
  const direct = await openPgQueue({ url: db.url, poolSize: 1 });
  await direct.close();
  try {
    let refused: Error | undefined;
    for (let i = 0; i < 10 && !refused; i++) await queue.messages.getMessage('nothing-here').catch((err: Error) => { refused = err; });
    assert.ok(refused, 'some statement was refused');
    assert.match(String((refused as Error & { cause?: unknown }).cause ?? refused), /prepared statement/);
  } finally {
    await queue.close();
  }
});

test('prepared_statements = false: a node\'s whole cycle works through PgBouncer in transaction mode', { skip }, async () => {
  let now = T0;
  const queue = await openPgQueue({ url: viaBouncer(), poolSize: 4, preparedStatements: false, clock: () => now });
  try {
    // Several turns of concurrent enqueues (each turn one group commit), and a keyed group.
    const ids: string[] = [];
    for (let turn = 0; turn < 3; turn++) {
      ids.push(...await Promise.all(Array.from({ length: 10 }, (_, i) =>
        queue.messages.enqueue(message([{ address: `r${turn}-${i}@example.test`, destination: 'example.test' }])))));
    }
    ids.push(...await queue.messages.enqueueGroup([message(), message()], {
      token: 'tok', key: 'k1', bodyHash: 'h', state: 'accepted', status: 202, response: '{}', createdAt: T0,
    }));
    assert.equal(ids.length, 32);
    now += 1_000;
    // The gate's acquire (BEGIN, lock and reads pipelined) through PgBouncer: two slots of a cap of 2, then a wait.
    const slots = await Promise.all([0, 1].map(() => queue.gate.acquire({ destination: 'example.test', node: 'node-a', now, leaseUntil: now + 60_000, maxConnections: 2 })));
    assert.deepEqual(slots.map((g) => g.kind), ['go', 'go']);
    assert.equal((await queue.gate.acquire({ destination: 'example.test', node: 'node-a', now, leaseUntil: now + 60_000, maxConnections: 2 })).kind, 'wait');
    for (const g of slots) if (g.kind !== 'wait') await queue.gate.releaseSlot(g.slot);
    let claimed = 0;
    for (let round = 0; round < 5; round++) {
      const batch = await queue.recipients.claimDue({ now, limit: 10, owner: 'node-a', leaseUntil: now + 60_000 });
      if (batch.length === 0) break;
      claimed += batch.length;
      const reads = await Promise.all(batch.map((r) => queue.messages.getForDelivery(r.messageId)));
      assert.ok(reads.every((g, i) => g?.message.id === batch[i]!.messageId && g.body.length > 0));
      const applied = await Promise.all(batch.map((r) => queue.recipients.recordOutcomes([{ recipientId: r.id, outcome: { kind: 'delivered', reply } }], now, 'node-a')));
      assert.deepEqual(applied, batch.map((r) => [r.id]));
    }
    assert.equal(claimed, 32);
    assert.equal((await queue.recipients.counts()).byState.delivered, 32);
    assert.equal((await queue.idempotency.getIdempotency('tok', 'k1', 0))?.status, 202);
    assert.equal((await queue.recipients.removeCompleted(100)).length, 32);
  } finally {
    await queue.close();
  }
});
