/**
 * Child process for crash.test.ts: enqueues messages into the store at
 * argv[2] until killed (bounded, in case nobody kills it), several at a time
 * so they share group commits, and prints "<id> <seq>" the moment each
 * enqueue resolves. Stdout to a pipe is synchronous on Linux, so a printed
 * line means the parent can rely on that id having been acknowledged.
 */
import { pathToFileURL } from 'node:url';
import { openSqliteQueue } from '../../src/queue/sqlite/store.js';
import type { NewMessage } from '../../src/queue/model.js';

/** The body message `seq` carries; the parent recomputes it to check integrity. */
export function childBody(seq: number): Buffer {
  return Buffer.from(`Subject: message ${seq}\r\n\r\n${'x'.repeat(500 + (seq % 97))}\r\n`);
}

export function childMessage(seq: number): NewMessage {
  return {
    sender: 'crash@sender.test',
    params: { smtputf8: false },
    receivedAt: Date.now(),
    trace: { clientIp: '127.0.0.1', clientHelo: 'child', protocol: 'ESMTP' },
    body: childBody(seq),
    recipients: [
      { address: `a${seq}@one.test`, destination: 'one.test' },
      { address: `b${seq}@two.test`, destination: 'two.test' },
    ],
  };
}

async function main(dataDir: string): Promise<void> {
  const store = await openSqliteQueue({ dataDir });
  const PARALLEL = 4;
  for (let round = 0; round < 100_000; round++) {
    await Promise.all(Array.from({ length: PARALLEL }, async (_, k) => {
      const seq = round * PARALLEL + k;
      const id = await store.messages.enqueue(childMessage(seq));
      process.stdout.write(`${id} ${seq}\n`);
    }));
  }
  await store.close();
}

// Run only as a script with a directory; imported (or picked up by a test runner) it does nothing.
const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain && process.argv[2] !== undefined) {
  main(process.argv[2]).catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
