/**
 * Child process for claim.test.ts: opens the store at argv[2] as owner
 * argv[3] and claims small batches until the queue has nothing due, printing
 * each claimed recipient id on its own line. Bounded to 10,000 rounds.
 */
import { pathToFileURL } from 'node:url';
import { openSqliteQueue } from '../../src/queue/sqlite/store.js';

async function main(dataDir: string, owner: string): Promise<void> {
  const store = await openSqliteQueue({ dataDir });
  for (let round = 0; round < 10_000; round++) {
    const now = Date.now();
    const claimed = await store.recipients.claimDue({ now, limit: 3, owner, leaseUntil: now + 600_000 });
    if (claimed.length === 0) break;
    process.stdout.write(claimed.map((r) => `${r.id}\n`).join(''));
  }
  await store.close();
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain && process.argv[3] !== undefined) {
  main(process.argv[2]!, process.argv[3]).catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
