/**
 * The queue contracts (test/queue/contract) against the SQLite queue: opened
 * directly, as the CLI does, and through its worker thread, as the server
 * does. A second handle on the same file stands for a second node.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteQueue } from '../../src/queue/sqlite/store.js';
import type { Queue } from '../../src/queue/store.js';
import { WorkerQueue } from '../../src/queue/sqlite/worker-store.js';
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

function sqlite(name: string, open: (dataDir: string, clock: () => number) => Promise<Queue>): Implementation {
  return {
    name,
    async fresh(): Promise<QueueUnderTest> {
      const dir = mkdtempSync(join(tmpdir(), 'halcyon-contract-'));
      const clock = { now: T0 };
      const handles: Queue[] = [];
      const openOne = async (): Promise<Queue> => {
        const q = await open(dir, () => clock.now);
        handles.push(q);
        return q;
      };
      const queue = await openOne();
      return {
        queue, clock, open: openOne,
        async close() {
          for (const h of handles) await h.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

for (const impl of [
  sqlite('SQLite', (dataDir, clock) => openSqliteQueue({ dataDir, clock, events: EVENT_ROUTES })),
  sqlite('SQLite in its worker thread', (dataDir, clock) => WorkerQueue.open({ dataDir, clock, events: EVENT_ROUTES })),
]) {
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
}
