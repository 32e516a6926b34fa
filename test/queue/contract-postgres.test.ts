/**
 * The queue contracts (test/queue/contract) against the PostgreSQL queue, on
 * a database of its own per test (created and dropped on the machine's
 * PostgreSQL). A second pool on the same database stands for a second node.
 * Skips with the reason when PostgreSQL does not answer (fails under
 * HALCYON_REQUIRE_INTEROP=1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { openPgQueue } from '../../src/queue/pg/store.js';
import { PG_SCHEMA_VERSION, PG_VERSIONS } from '../../src/queue/pg/schema.js';
import type { Queue } from '../../src/queue/store.js';
import { createTestDatabase, pgUnavailable } from '../support/postgres.js';
import { adminBounceContract } from './contract/admin-bounce.js';
import { destinationGateContract } from './contract/destination-gate.js';
import { eventOutboxContract } from './contract/event-outbox.js';
import { EVENT_ROUTES, T0, type Implementation, type QueueUnderTest } from './contract/harness.js';
import { messageStoreContract } from './contract/message-store.js';
import { recipientQueueContract } from './contract/recipient-queue.js';
import { verifyCacheContract } from './contract/verify-cache.js';
import { tlsReportsContract } from './contract/tls-reports.js';
import { suppressionListContract } from './contract/suppression-list.js';
import { idempotencyContract } from './contract/idempotency.js';
import { tenantsContract } from './contract/tenants.js';

const skip = await pgUnavailable();

const impl: Implementation = {
  name: 'PostgreSQL',
  ...(skip ? { skip } : {}),
  async fresh(): Promise<QueueUnderTest> {
    const db = await createTestDatabase();
    const clock = { now: T0 };
    const handles: Queue[] = [];
    const openOne = async (): Promise<Queue> => {
      const q = await openPgQueue({ url: db.url, clock: () => clock.now, poolSize: 4, events: EVENT_ROUTES });
      handles.push(q);
      return q;
    };
    const queue = await openOne();
    return {
      queue, clock, open: openOne,
      async close() {
        for (const h of handles) await h.close();
        await db.drop();
      },
    };
  },
};

messageStoreContract(impl);
recipientQueueContract(impl);
destinationGateContract(impl);
eventOutboxContract(impl);
verifyCacheContract(impl);
suppressionListContract(impl);
adminBounceContract(impl);
tlsReportsContract(impl);
idempotencyContract(impl);
tenantsContract(impl);

test('migration: nodes starting together create the schema once; a newer schema is refused', { skip }, async () => {
  const db = await createTestDatabase();
  try {
    const queues = await Promise.all([1, 2, 3].map(() => openPgQueue({ url: db.url, poolSize: 2 })));
    for (const q of queues) await q.close();
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      assert.deepEqual((await c.query('SELECT version FROM halcyon_schema_version ORDER BY version')).rows.map((r) => r.version as number), [...PG_VERSIONS]);
      // 9: new bodies are compressed with lz4 (or, on a server without it, not at all).
      const { rows: [col] } = await c.query("SELECT a.attcompression AS comp, a.attstorage AS storage FROM pg_attribute a WHERE a.attrelid = 'bodies'::regclass AND a.attname = 'data'");
      assert.ok(col.comp === 'l' || col.storage === 'e', `bodies.data: compression ${col.comp}, storage ${col.storage}`);
      assert.equal((await c.query('SHOW synchronous_commit')).rows[0]?.synchronous_commit, 'on');
      await c.query('INSERT INTO halcyon_schema_version VALUES (99, 0)');
    } finally {
      await c.end();
    }
    await assert.rejects(openPgQueue({ url: db.url }), /newer than this Halcyon/);
  } finally {
    await db.drop();
  }
});

test('migration: a version left free in this build is skipped; a database that has it is refused; a missing one is applied', { skip }, async () => {
  const free = Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => i + 1).filter((v) => !PG_VERSIONS.includes(v));
  const db = await createTestDatabase();
  try {
    await (await openPgQueue({ url: db.url, poolSize: 1 })).close();
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      // A database migrated before the last version: it is applied at the next start, the others are not run again.
      const last = PG_VERSIONS.at(-1)!;
      await c.query('DELETE FROM halcyon_schema_version WHERE version = $1', [last]);
      await (await openPgQueue({ url: db.url, poolSize: 1 })).close();
      assert.deepEqual((await c.query('SELECT version FROM halcyon_schema_version ORDER BY version')).rows.map((r) => r.version as number), [...PG_VERSIONS]);
      // A version this build leaves free, recorded by a build that has it: newer than this one.
      for (const v of free) {
        await c.query('INSERT INTO halcyon_schema_version VALUES ($1, 0)', [v]);
        await assert.rejects(openPgQueue({ url: db.url, poolSize: 1 }), /newer than this Halcyon/);
        await c.query('DELETE FROM halcyon_schema_version WHERE version = $1', [v]);
      }
    } finally {
      await c.end();
    }
  } finally {
    await db.drop();
  }
});
