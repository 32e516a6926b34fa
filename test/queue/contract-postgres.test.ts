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
import { PG_SCHEMA_VERSION } from '../../src/queue/pg/schema.js';
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

test('migration: nodes starting together create the schema once; a newer schema is refused', { skip }, async () => {
  const db = await createTestDatabase();
  try {
    const queues = await Promise.all([1, 2, 3].map(() => openPgQueue({ url: db.url, poolSize: 2 })));
    for (const q of queues) await q.close();
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      assert.deepEqual((await c.query('SELECT version FROM halcyon_schema_version ORDER BY version')).rows.map((r) => r.version as number),
        Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => i + 1));
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
