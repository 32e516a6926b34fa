/**
 * The Message-ID column (SQLite schema 8, PostgreSQL migration 6) on a queue
 * made by the Halcyon before it: a message queued then (its Message-ID in
 * event_facts only) is found by a search on its Message-ID once the queue is
 * opened by this one — no body is read, nothing is backfilled by hand — and a
 * salvage of a version 5 queue keeps it searchable. Both dialects.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openPgQueue } from '../../src/queue/pg/store.js';
import { PG_MIGRATIONS } from '../../src/queue/pg/schema.js';
import { queueFiles } from '../../src/queue/sqlite/check.js';
import { salvageQueue } from '../../src/queue/sqlite/salvage.js';
import { PRAGMAS, SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7, SCHEMA_V8, SCHEMA_VERSION } from '../../src/queue/sqlite/schema.js';
import { openSqliteQueue } from '../../src/queue/sqlite/store.js';
import { createTestDatabase, pgUnavailable } from '../support/postgres.js';

const T0 = 1_700_000_000_000;
const FACTS = JSON.stringify({ message_id: '<Invoice-2026.11@Billing.example>', tenant: 'acme' });
const MESSAGE = ['01OLDMESSAGE', 'alice@src.test', JSON.stringify({ smtputf8: false }), T0, 5, JSON.stringify({ clientIp: '127.0.0.1', clientHelo: 'h', protocol: 'ESMTP' }), FACTS];
const found = async (q: { recipients: { listMessages(f: { search: { text: string } }): Promise<{ message: { id: string } }[]> } }, text: string) =>
  (await q.recipients.listMessages({ search: { text } })).map((e) => e.message.id);

/** A queue file in `dir` as an older Halcyon left it: the given schema steps applied, user_version set to `version`. */
function oldQueue(dir: string, steps: readonly string[], version: number): Database.Database {
  const f = queueFiles(dir);
  mkdirSync(f.dir, { recursive: true });
  const old = new Database(f.db);
  for (const p of PRAGMAS) old.pragma(p);
  for (const v of steps) old.exec(v);
  old.pragma(`user_version = ${version}`);
  return old;
}

test('SQLite: a version 4 queue opened by this Halcyon finds its messages by Message-ID; salvage keeps them searchable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-mid-'));
  try {
    const old = oldQueue(dir, [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4], 4);
    old.prepare('INSERT INTO messages (id, sender, params, received_at, size, trace, held, dsn_for, event_facts) VALUES (?, ?, ?, ?, ?, ?, 0, NULL, ?)').run(...MESSAGE);
    old.prepare("INSERT INTO bodies (message_id, data) VALUES ('01OLDMESSAGE', ?)").run(Buffer.from('x\r\n'));
    old.prepare(`INSERT INTO recipients (message_id, address, domain, destination, state, attempts, next_attempt_at, updated_at)
      VALUES ('01OLDMESSAGE', 'bob@dest.test', 'dest.test', 'dest.test', 'queued', 0, ?, ?)`).run(T0, T0);
    old.close();

    let q = await openSqliteQueue({ dataDir: dir, clock: () => T0 });
    assert.deepEqual(await found(q, 'invoice-2026.11@billing'), ['01OLDMESSAGE']);
    assert.equal((await q.messages.getMessage('01OLDMESSAGE'))?.tenant, 'acme', 'schema 9: the tenant column is generated from what was kept since version 4');
    assert.deepEqual(await found(q, 'no-such-id'), []);
    await q.close();

    const report = salvageQueue(dir, T0);
    assert.equal(report.messages, 1);
    q = await openSqliteQueue({ dataDir: dir, clock: () => T0 });
    assert.deepEqual(await found(q, '<invoice-2026'), ['01OLDMESSAGE'], 'searchable after a salvage');
    await q.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SQLite: a queue the Halcyon of schema 8 made (it wrote user_version 7 after applying version 8) opens at version 9', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-v8-'));
  try {
    const old = oldQueue(dir, [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7, SCHEMA_V8], 7);
    old.prepare('INSERT INTO messages (id, sender, params, received_at, size, trace, held, dsn_for, event_facts) VALUES (?, ?, ?, ?, ?, ?, 0, NULL, ?)').run(...MESSAGE);
    old.close();
    const q = await openSqliteQueue({ dataDir: dir, clock: () => T0 });
    try {
      assert.deepEqual(await found(q, 'invoice-2026.11@billing'), ['01OLDMESSAGE']);
      assert.equal((await q.messages.getMessage('01OLDMESSAGE'))?.tenant, 'acme');
      assert.equal(await q.idempotency.getIdempotency('t', 'k', 0), undefined, 'the key table is there');
    } finally {
      await q.close();
    }
    const db = new Database(queueFiles(dir).db, { readonly: true });
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const skip = await pgUnavailable();

test('PostgreSQL: a queue at migration 2 migrated by this Halcyon finds its messages by Message-ID', { skip }, async () => {
  const db = await createTestDatabase();
  try {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query('CREATE TABLE halcyon_schema_version (version integer PRIMARY KEY, applied_at bigint NOT NULL)');
      for (const v of [1, 2]) {
        await c.query(PG_MIGRATIONS[v - 1]!);
        await c.query('INSERT INTO halcyon_schema_version VALUES ($1, 0)', [v]);
      }
      await c.query('INSERT INTO messages (id, sender, params, received_at, size, trace, held, dsn_for, event_facts) VALUES ($1, $2, $3, $4, $5, $6, 0, NULL, $7)', MESSAGE);
      await c.query("INSERT INTO messages (id, sender, params, received_at, size, trace, held) VALUES ('01BEFOREEVENTS', 'x@src.test', '{}', 0, 1, '{}', 0)");
    } finally {
      await c.end();
    }
    const q = await openPgQueue({ url: db.url, clock: () => T0, poolSize: 2 });
    try {
      assert.deepEqual(await found(q, 'invoice-2026.11@billing'), ['01OLDMESSAGE']);
      assert.equal((await q.messages.getMessage('01OLDMESSAGE'))?.tenant, 'acme', 'migration 7: the tenant column');
      assert.deepEqual(await found(q, 'src.test'), ['01BEFOREEVENTS', '01OLDMESSAGE'], 'a message without facts is still listed by its other fields');
    } finally {
      await q.close();
    }
  } finally {
    await db.drop();
  }
});
