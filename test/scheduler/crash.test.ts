/**
 * Crash safety of delivery: the real `halcyon serve` delivers 2,000 queued
 * messages to a slow remote, is SIGKILLed about halfway, and is started
 * again on the same data_dir. Every message must reach the remote at least
 * once, and the only duplicates allowed are the transactions that were in
 * flight at the kill (the remote said 250 but the queue had not recorded it
 * yet — RFC 1047's window): at most one per open connection, so at most
 * max_connections_per_destination.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destinationKey } from '../../src/delivery/route.js';
import { openSqliteQueue } from '../../src/queue/sqlite/store.js';
import { queueList, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { startRemote } from '../support/remote-smtp.js';
import { BODY, enqueueMany } from './harness.js';

const MESSAGES = 2_000;
const PER_DESTINATION = 5;
const DOMAIN = 'example.test';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(`SIGKILL mid-delivery of ${MESSAGES} messages: all delivered after restart, ≤ ${PER_DESTINATION} duplicates`, { timeout: 120_000 }, async (t) => {
  const remote = await startRemote({ delayMs: 2 });
  after(() => remote.close());
  const dataDir = mkdtempSync(join(tmpdir(), 'halcyon-sched-crash-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));
  const children: SpawnedHalcyon[] = [];
  after(async () => { for (const c of children) await c.kill('SIGKILL'); });

  const routes = { [DOMAIN]: `127.0.0.1:${remote.port}` };
  const store = await openSqliteQueue({ dataDir });
  await enqueueMany(store, { count: MESSAGES, destination: destinationKey(DOMAIN, routes), domain: DOMAIN, receivedAt: Date.now(), sender: 'sender@origin.test', body: BODY });
  await store.close();

  const toml = `
[routes]
"${DOMAIN}" = "127.0.0.1:${remote.port}"
[delivery]
tls = "none"
max_connections_per_destination = ${PER_DESTINATION}
[delivery.timeouts]
connect = "2s"
greeting = "5s"
command = "5s"
data_init = "5s"
data_done = "5s"
`;
  const first = await spawnHalcyon(toml, { dataDir, readyTimeoutMs: 30_000 });
  children.push(first);
  await remote.waitFor(() => remote.transactions.length >= MESSAGES / 2, 60_000);
  const openAtKill = remote.current;
  const killed = await first.kill('SIGKILL');
  assert.equal(killed.signal, 'SIGKILL');
  const atKill = remote.transactions.length;
  assert.ok(atKill < MESSAGES, `all ${MESSAGES} were delivered before the kill; nothing was tested`);

  const second = await spawnHalcyon(toml, { dataDir, readyTimeoutMs: 30_000 });
  children.push(second);
  // Bounded wait for the queue to drain, asked the way a user would.
  let left = -1;
  for (let i = 0; i < 120; i++) {
    const list = await queueList(second.configFile);
    left = list.reduce((n, e) => n + e.recipients.filter((r) => !['delivered', 'failed', 'expired'].includes(r.state)).length, 0);
    if (left === 0) break;
    await sleep(500);
  }
  assert.equal(left, 0, 'the queue did not drain after the restart');
  const stopped = await second.kill('SIGTERM');
  assert.equal(stopped.code, 0, second.stderr());

  const accepted = new Map<string, number>();
  for (const tx of remote.transactions) {
    if (!tx.reply?.startsWith('250')) continue;
    for (const r of tx.rcpts) accepted.set(r, (accepted.get(r) ?? 0) + 1);
  }
  for (let i = 0; i < MESSAGES; i++) assert.ok(accepted.has(`user${i}-0@${DOMAIN}`), `message ${i} never delivered`);
  assert.equal(accepted.size, MESSAGES);
  const duplicates = [...accepted.values()].reduce((n, c) => n + c - 1, 0);
  t.diagnostic(`killed after ${atKill} transactions with ${openAtKill} connection(s) open; ${duplicates} duplicate(s)`);
  assert.ok(duplicates <= PER_DESTINATION, `${duplicates} duplicate deliveries (${openAtKill} connections open at the kill)`);

  // Nothing left behind: the store holds no message (delivered ones are removed).
  const check = await openSqliteQueue({ dataDir });
  try {
    assert.equal((await check.recipients.counts()).messages, 0);
  } finally {
    await check.close();
  }
});
