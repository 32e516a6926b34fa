/**
 * A damaged or emptied queue file (issue 10, item 4): `serve` refuses to
 * start, naming the file and the commands to run; `queue check` says what is
 * wrong; `queue salvage` copies what can be read into a fresh queue and lists
 * what could not; a data_dir that held a queue never starts empty over a
 * zero-length file. The compiled CLI, real files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteQueue } from '../../src/queue/sqlite/store.js';
import { freePort, runCli, spawnHalcyon, TEST_HOSTNAME } from '../support/halcyon.js';

const N = 40;

async function fill(dataDir: string, opts: { keepWalAt?: string } = {}): Promise<void> {
  const store = await openSqliteQueue({ dataDir });
  for (let i = 0; i < N; i++) {
    await store.messages.enqueue({
      sender: `s${i}@src.test`, params: { smtputf8: false }, receivedAt: Date.now(),
      trace: { clientIp: '127.0.0.1', clientHelo: 'c.test', protocol: 'ESMTP' },
      body: Buffer.from(`Subject: m${i}\r\n\r\n${`line ${i} of a body that fills pages\r\n`.repeat(80)}`),
      recipients: [{ address: `r${i}@dest.test`, destination: 'dest.test' }],
    });
  }
  if (opts.keepWalAt) copyFileSync(join(dataDir, 'queue', 'queue.db-wal'), opts.keepWalAt);
  await store.close();
}

async function configIn(dataDir: string): Promise<string> {
  const file = join(dataDir, 'halcyon.toml');
  // The route goes nowhere that answers: the messages stay queued, which is what the test counts.
  writeFileSync(file, `hostname = "${TEST_HOSTNAME}"\ndata_dir = "${dataDir}"\nlog_level = "error"\n[smtp]\nlisten = ["127.0.0.1:${await freePort()}"]\n[http]\nenabled = false\n[routes]\n"dest.test" = "127.0.0.1:9"\n`);
  return file;
}

const serve = (file: string) => runCli(['serve', '--config', file], { timeoutMs: 20_000 });
const queued = async (file: string) => JSON.parse((await runCli(['queue', 'list', '--json', '--direct', '--config', file])).stdout) as unknown[];

test('three overwritten pages: serve refuses and names the file; check says damaged; salvage copies what it can read', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'halcyon-corrupt-'));
  try {
    await fill(dataDir);
    const file = await configIn(dataDir);
    const db = join(dataDir, 'queue', 'queue.db');
    const pages = Math.floor(statSync(db).size / 4096);
    assert.ok(pages > 20, `enough pages to damage a few (${pages})`);
    const fd = openSync(db, 'r+');
    for (const p of [Math.floor(pages / 2), Math.floor(pages / 2) + 1, Math.floor(pages / 2) + 2]) writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, p * 4096);
    closeSync(fd);

    const refused = await serve(file);
    assert.equal(refused.code, 3, refused.stderr);
    assert.ok(refused.stderr.includes(db), `names the file: ${refused.stderr}`);
    assert.match(refused.stderr, /halcyon queue check/);
    assert.match(refused.stderr, /halcyon queue salvage/);

    const check = await runCli(['queue', 'check', '--config', file]);
    assert.equal(check.code, 1);
    assert.match(check.stdout, /DAMAGED/);

    const salvage = await runCli(['queue', 'salvage', '--json', '--config', file]);
    const report = JSON.parse(salvage.stdout) as { keptAs: string; messages: number; lost: { id: string }[] };
    console.log(`salvage: ${report.messages} copied, ${report.lost.length} lost of ${N}`);
    assert.ok(report.messages > 0, "some messages were readable");
    assert.ok(report.messages + report.lost.length <= N);
    assert.equal(salvage.code, report.lost.length > 0 ? 1 : 0);
    assert.ok(existsSync(report.keptAs), 'the damaged file is kept');
    assert.equal((await runCli(['queue', 'check', '--config', file])).code, 0, 'the fresh queue passes the check');
    assert.equal((await queued(file)).length, report.messages, 'every salvaged message is in the queue');
    const h = await spawnHalcyon('', { dataDir });
    await h.kill('SIGTERM');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/** A data_dir whose server ran (so it held a queue), then lost its queue.db to zero bytes; removed after `fn`. */
async function withEmptiedQueue(fn: (dataDir: string, db: string) => Promise<void>): Promise<void> {
  const h = await spawnHalcyon('');
  try {
    await h.kill('SIGTERM');
    const db = join(h.dataDir, 'queue', 'queue.db');
    truncateSync(db, 0);
    rmSync(`${db}-wal`, { force: true });
    await fn(h.dataDir, db);
  } finally {
    rmSync(h.dataDir, { recursive: true, force: true });
  }
}

test('a zero-length queue.db in a data_dir that held a queue: serve refuses rather than start empty', () => withEmptiedQueue(async (dataDir, db) => {
  const r = await serve(await configIn(dataDir));
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /is empty \(0 bytes\), but this data_dir held a queue/);
  assert.ok(r.stderr.includes(db));
  assert.equal(statSync(db).size, 0, 'nothing was created over it');
}));

test('a zero-length queue.db in a data_dir that held a queue: the verify and events commands refuse too, and write nothing over it', () => withEmptiedQueue(async (dataDir, db) => {
  const file = await configIn(dataDir);
  for (const args of [['verify', 'forget', 'someone@dest.test'], ['verify', 'list'], ['events', 'status']]) {
    const r = await runCli([...args, '--config', file]);
    assert.notEqual(r.code, 0, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, /is empty \(0 bytes\), but this data_dir held a queue/, args.join(' '));
    assert.equal(statSync(db).size, 0, `${args.join(' ')} created nothing over it`);
  }
}));

test('a zero-length queue.db beside a -wal that holds writes: refused; salvage recovers the messages from the WAL', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'halcyon-wal-'));
  try {
    const saved = join(dataDir, 'saved-wal');
    await fill(dataDir, { keepWalAt: saved });
    const db = join(dataDir, 'queue', 'queue.db');
    truncateSync(db, 0);
    writeFileSync(`${db}-wal`, readFileSync(saved));
    const file = await configIn(dataDir);
    const r = await serve(file);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /queue\.db-wal holds \d+ bytes/);
    const salvage = await runCli(['queue', 'salvage', '--json', '--config', file]);
    const report = JSON.parse(salvage.stdout) as { messages: number };
    assert.equal((await queued(file)).length, report.messages);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
