/**
 * bench/queue-write — a throwaway measurement behind
 * docs/decisions/0002-bodies-in-sqlite.md: how fast 2,000 × 1 KiB messages
 * become durable (a) in SQLite with group commit, (b) in SQLite one commit per
 * message, (c) as one file per body with fsync of the file and its directory,
 * one after another, and (d) the same with all files written concurrently.
 * Prints figures; asserts nothing. (c)/(d) count only the body files — the
 * recipient rows would still need a database commit on top.
 *
 * Run: node .tmp/build-XX/bench/queue-write.js [count]
 */
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteQueue } from '../src/queue/sqlite/store.js';
import type { NewMessage } from '../src/queue/model.js';

const COUNT = Number(process.argv[2] ?? 2000);
const BODY = Buffer.alloc(1024, 0x61);

function msg(): NewMessage {
  return {
    sender: 'bench@sender.test', params: { smtputf8: false }, receivedAt: Date.now(),
    trace: { clientIp: '127.0.0.1', clientHelo: 'bench', protocol: 'ESMTP' }, body: BODY,
    recipients: [{ address: 'rcpt@example.test', destination: 'example.test' }],
  };
}

function report(name: string, ms: number, extra = ''): void {
  console.log(`${name.padEnd(44)} ${ms.toFixed(0).padStart(7)} ms  ${(COUNT / (ms / 1000)).toFixed(0).padStart(7)} msg/s ${extra}`);
}

async function sqlite(grouped: boolean): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-bench-'));
  const store = await openSqliteQueue({ dataDir: dir });
  const t = performance.now();
  if (grouped) await Promise.all(Array.from({ length: COUNT }, () => store.messages.enqueue(msg())));
  else for (let i = 0; i < COUNT; i++) await store.messages.enqueue(msg());
  const ms = performance.now() - t;
  report(grouped ? 'sqlite, group commit (all concurrent)' : 'sqlite, one commit per message', ms, `(${store.stats.enqueueCommits} commits)`);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

function fileSequential(): void {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-bench-'));
  const spool = join(dir, 'spool');
  mkdirSync(spool);
  const t = performance.now();
  for (let i = 0; i < COUNT; i++) {
    const fd = openSync(join(spool, `m${i}`), 'wx');
    writeSync(fd, BODY);
    fsyncSync(fd);
    closeSync(fd);
    const dfd = openSync(spool, 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  }
  report('file per body + fsync file & dir, sequential', performance.now() - t);
  rmSync(dir, { recursive: true, force: true });
}

async function fileConcurrent(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-bench-'));
  const spool = join(dir, 'spool');
  mkdirSync(spool);
  const t = performance.now();
  await Promise.all(Array.from({ length: COUNT }, async (_, i) => {
    const fh = await open(join(spool, `m${i}`), 'wx');
    await fh.write(BODY);
    await fh.sync();
    await fh.close();
    const dh = await open(spool, 'r');
    await dh.sync();
    await dh.close();
  }));
  report('file per body + fsync file & dir, concurrent', performance.now() - t);
  rmSync(dir, { recursive: true, force: true });
}

console.log(`${COUNT} messages of ${BODY.length} bytes, tmpdir ${tmpdir()}`);
await sqlite(true);
await sqlite(false);
fileSequential();
await fileConcurrent();
