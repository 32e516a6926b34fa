/**
 * The PostgreSQL queue when its sessions are ended under it (the server's
 * `pg_terminate_backend`, what a fast shutdown does to every session): a call
 * fails with HAL_ERR_QUEUE_UNAVAILABLE (451 4.3.0), the queue's health turns
 * unavailable, and its probe makes it ok again by itself while the server
 * answers. A session ended between two statements of a transaction fails
 * that transaction, not the process. On a database of its own on the
 * machine's PostgreSQL; skips when it does not answer (fails under
 * HALCYON_REQUIRE_INTEROP=1).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { QueueHealth } from '../../src/queue/health.js';
import { createPool, migratePg, PgDb } from '../../src/queue/pg/db.js';
import { openPgQueue } from '../../src/queue/pg/store.js';
import { createTestDatabase, pgUnavailable } from '../support/postgres.js';

const skip = await pgUnavailable();

async function until(what: string, pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`not reached within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('sessions ended under the queue: 451 4.3.0 (HAL_ERR_QUEUE_UNAVAILABLE), health unavailable, back to ok by itself', { skip, timeout: 60_000 }, async () => {
  const db = await createTestDatabase();
  const q = await openPgQueue({ url: db.url, poolSize: 2 });
  const admin = new pg.Client({ connectionString: db.url });
  // In this order: a session still open when the database is dropped (WITH FORCE) would be ended under us.
  after(async () => { await admin.end().catch(() => undefined); await q.close(); await db.drop(); });
  const changes: string[] = [];
  q.health.onChange((c) => changes.push(c.state));
  // A call held inside the database (waiting for the destination's lock, which we hold), then its session ended.
  await admin.connect();
  await admin.query('BEGIN');
  await admin.query(`SELECT pg_advisory_xact_lock(hashtext('halcyon-destination:' || $1))`, ['x.test']);
  const call = q.gate.acquire({ destination: 'x.test', node: 'n1', now: 1, leaseUntil: 2, maxConnections: 1 }).then(() => undefined, (err: unknown) => err);
  const waiting = async () => (await admin.query(`SELECT COUNT(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`)).rows[0].n as number;
  for (let i = 0; i < 200 && (await waiting()) === 0; i++) await new Promise((r) => setTimeout(r, 20));
  // Every session on the database but this one, as a fast shutdown ends them.
  const { rows } = await admin.query<{ n: number }>(
    'SELECT COUNT(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
  assert.ok(rows[0]!.n >= 1, 'sessions to end');
  await admin.query('ROLLBACK');
  const failure = await call;
  assert.ok(failure, 'the call whose session was ended fails');
  assert.equal((failure as { code?: string }).code, 'HAL_ERR_QUEUE_UNAVAILABLE', String(failure));
  assert.equal(q.health.state, 'unavailable');
  assert.equal(q.health.problem?.code, 'HAL_ERR_QUEUE_UNAVAILABLE');
  // The server answers: the probe (after 1 s) makes the queue ok again, without a call from us.
  await until('health ok again', () => q.health.state === 'ok', 20_000);
  assert.deepEqual(changes, ['unavailable', 'ok']);
  assert.equal(typeof (await q.recipients.counts()).messages, 'number');
});

test('a session ended between two statements of a transaction fails the transaction, not the process', { skip, timeout: 60_000 }, async () => {
  const db = await createTestDatabase();
  const pool = createPool({ url: db.url, poolSize: 2 });
  const health = new QueueHealth();
  const d = new PgDb(pool, Date.now, health);
  after(async () => { d.closed = true; await pool.end(); await db.drop(); });
  await migratePg(pool);
  const tx = d.tx('test', async (c) => {
    const { rows } = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    // No statement of ours is running now: the server's FATAL reaches the client as an 'error' event.
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
    await admin.end();
    await new Promise((r) => setTimeout(r, 300));
    await c.query('SELECT 1');
  });
  await assert.rejects(tx, { code: 'HAL_ERR_QUEUE_UNAVAILABLE' });
  assert.equal(health.state, 'unavailable');
  health.close();
  // The pool dropped the dead session: the next transaction runs on a fresh one.
  assert.equal(await d.tx('again', async (c) => (await c.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one), 1);
});
