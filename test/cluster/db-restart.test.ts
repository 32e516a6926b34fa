/**
 * The queue's database restarted under load (issue 15): two `halcyon serve`
 * nodes on a PostgreSQL server of the test's own (test/support/
 * private-postgres — never the shared one on 5432), a client sending to both
 * all along. The server is stopped for a few seconds and started again,
 * twice: `pg_ctl stop -m fast`, then `-m immediate` (crash recovery on
 * start). What a user checks:
 *
 * - no reply but 250 or 451 4.3.0, from start to end; while the database is
 *   down, only 451 4.3.0 (at MAIL FROM, or at end of data for a transaction
 *   already under way), /api/health answers 503 and `halcyon_queue_up` is 0;
 * - each node logs each loss once and each recovery once, naming itself;
 * - the nodes come back by themselves: 250 again, /api/health 200;
 * - every message that got a 250 reaches the remote (nothing acknowledged is
 *   lost). Duplicates (an outcome the database did not take before it went
 *   down: delivered again after its lease) are allowed and counted.
 *
 * Skips with the reason when no PostgreSQL server binaries are installed
 * (fails under HALCYON_REQUIRE_INTEROP=1).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { privatePgUnavailable, startPrivatePostgres } from '../support/private-postgres.js';
import { startRemote } from '../support/remote-smtp.js';
import { RawSmtpClient } from '../support/smtp-client.js';
import { clusterToml, REMOTE } from './nodes.js';

const skip = privatePgUnavailable();

interface Sent {
  readonly n: number;
  readonly node: number;
  readonly startedAt: number;
  readonly endedAt: number;
  /** "250", "451 4.3.0", … or "error: …" when the connection itself failed. */
  readonly reply: string;
  readonly stage: 'mail' | 'rcpt' | 'data' | 'end' | 'connect';
}

const rcptOf = (n: number) => `m${n}@${REMOTE}`;

/** One message on a connection of its own; never throws. */
async function sendOne(port: number, n: number, node: number): Promise<Sent> {
  const startedAt = Date.now();
  let stage: Sent['stage'] = 'connect';
  let c: RawSmtpClient | undefined;
  const done = (reply: string): Sent => ({ n, node, startedAt, endedAt: Date.now(), reply, stage });
  const text = (r: { code: number; enhanced?: string }) => `${r.code}${r.enhanced ? ` ${r.enhanced}` : ''}`;
  try {
    c = await RawSmtpClient.connect(port);
    await c.read();
    await c.expect('EHLO client.test', 250);
    stage = 'mail';
    const mail = await c.cmd('MAIL FROM:<load@client.test>');
    if (mail.code !== 250) return done(text(mail));
    stage = 'rcpt';
    const rcpt = await c.cmd(`RCPT TO:<${rcptOf(n)}>`);
    if (rcpt.code !== 250) return done(text(rcpt));
    stage = 'data';
    const data = await c.cmd('DATA');
    if (data.code !== 354) return done(text(data));
    stage = 'end';
    c.write(`From: load@client.test\r\nTo: ${rcptOf(n)}\r\nSubject: restart ${n}\r\n\r\nmessage ${n}\r\n`);
    const end = await c.cmd('.', 30_000);
    await c.cmd('QUIT').catch(() => undefined);
    return done(end.code === 250 ? '250' : text(end));
  } catch (err) {
    return done(`error: ${(err as Error).message}`);
  } finally {
    c?.close();
  }
}

async function health(node: SpawnedHalcyon): Promise<number> {
  // A node that died is the failure to report, not the fetch that found it gone.
  if (node.child.exitCode !== null || node.child.signalCode !== null) throw new Error(`the node exited (${node.child.exitCode ?? node.child.signalCode}): ${node.stderr().slice(-2_000)}`);
  return (await fetch(`http://127.0.0.1:${node.httpPort}/api/health`, { signal: AbortSignal.timeout(10_000) })).status;
}

async function metric(node: SpawnedHalcyon, name: string): Promise<string | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  return text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

/** Polls `pred` every 100 ms until it holds; throws with `what` after `ms`. */
async function until(what: string, pred: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`not reached within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const events = (node: SpawnedHalcyon, event: string) =>
  node.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((o) => o.event === event);

test('the database restarted under load: no 250 for anything not committed; the nodes recover by themselves', { skip, timeout: 240_000 }, async () => {
  const pg = await startPrivatePostgres();
  after(() => pg.destroy());
  // A slow remote and one connection per node: claimed batches wait in the scheduler when the database goes.
  const remote = await startRemote({ delayMs: 30 });
  after(() => remote.close());
  const names = ['node-a', 'node-b'];
  const nodes: SpawnedHalcyon[] = [];
  after(async () => {
    for (const n of nodes) {
      await n.kill('SIGTERM');
      rmSync(n.dataDir, { recursive: true, force: true });
    }
  });
  // A short lease: what a node had claimed when the database went away is delivered again soon after.
  for (const name of names) {
    nodes.push(await spawnHalcyon(`log_level = "info"\n${clusterToml(pg.url, name, remote.port, { lease: '5s', max_connections_per_destination: 1 })}`, { http: true, captureStdout: true }));
  }

  const sent: Sent[] = [];
  let next = 0;
  let load = true;
  const MAX = 5_000;
  // One sender per node, each a message at a time: load all along, bounded by count.
  const senders = nodes.map(async (node, i) => {
    while (load && next < MAX) {
      sent.push(await sendOne(node.port, next++, i));
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  const accepted = () => sent.filter((s) => s.reply === '250');

  // Two outages: a fast stop (sessions told to end), then an immediate one (no checkpoint: what was
  // committed comes back from the WAL by crash recovery).
  const MODES = ['fast', 'immediate'] as const;
  const outages: { downAt: number; restartAt: number }[] = [];
  try {
    for (const mode of MODES) {
      const base = accepted().length;
      await until(`20 more messages accepted before the ${mode} stop`, () => accepted().length >= base + 20, 60_000);
      await pg.stop(mode);
      const downAt = Date.now();
      // Both nodes notice (a refused message, or their scheduler's next pass) and say so.
      for (const node of nodes) await until('health 503 while the database is down', async () => (await health(node)) === 503, 30_000);
      assert.match((await metric(nodes[0]!, 'halcyon_queue_up')) ?? '', /node="node-a"\} 0$/, 'halcyon_queue_up is 0 and names the node');
      // A few seconds of mail to nodes that cannot reach their queue.
      const before = sent.length;
      await until('mail refused for a while during the outage', () => sent.length - before >= 20 && Date.now() - downAt >= 3_000, 60_000);
      const restartAt = Date.now();
      outages.push({ downAt, restartAt });
      await pg.start();
      for (let i = 0; i < nodes.length; i++) {
        await until(`node ${names[i]} accepts mail again`, () => sent.some((s) => s.node === i && s.startedAt > restartAt && s.reply === '250'), 60_000);
        await until(`node ${names[i]} healthy again`, async () => (await health(nodes[i]!)) === 200, 30_000);
      }
      assert.match((await metric(nodes[0]!, 'halcyon_queue_up')) ?? '', /node="node-a"\} 1$/, 'halcyon_queue_up is 1 again');
    }
    load = false;
    await Promise.all(senders);

    // Every reply: 250 or 451 4.3.0, never anything else; while down, never a 250.
    const odd = sent.filter((s) => s.reply !== '250' && s.reply !== '451 4.3.0');
    assert.deepEqual(odd, [], 'only 250 and 451 4.3.0');
    const duringOutage = sent.filter((s) => outages.some((o) => s.startedAt >= o.downAt && s.endedAt <= o.restartAt));
    assert.ok(duringOutage.length >= 40, `messages tried while the database was down (${duringOutage.length})`);
    assert.deepEqual(duringOutage.filter((s) => s.reply !== '451 4.3.0'), [], 'while the database is down: 451 4.3.0 only');
    assert.ok(duringOutage.some((s) => s.stage === 'mail'), 'a node that knows its queue is down refuses at MAIL FROM');

    // Nothing acknowledged is lost: every 250 arrives at the remote.
    const want = new Set(accepted().map((s) => rcptOf(s.n)));
    const arrived = () => new Set(remote.transactions.flatMap((t) => t.rcpts));
    await until(`all ${want.size} acknowledged messages delivered`, () => [...want].every((r) => arrived().has(r)), 120_000);
    const got = remote.transactions.flatMap((t) => t.rcpts);
    const duplicates = got.length - new Set(got).size;
    const refusedButDelivered = sent.filter((s) => s.reply !== '250' && arrived().has(rcptOf(s.n))).length;

    // One line each way per node, naming it — not one per refused message.
    for (let i = 0; i < nodes.length; i++) {
      const lost = events(nodes[i]!, 'queue_unavailable');
      const back = events(nodes[i]!, 'queue_restored');
      assert.equal(lost.length, MODES.length, `${names[i]}: each loss logged once (${lost.length} lines, ${MODES.length} outages)`);
      assert.equal(back.length, MODES.length, `${names[i]}: each recovery logged once (${back.length} lines, ${MODES.length} outages)`);
      for (const line of [...lost, ...back]) assert.equal(line.node, names[i]);
      // Refusals are counted in /metrics, not logged one by one: a handful of error lines (the loss, a failed
      // pass, a write under way), against hundreds of refused messages.
      const errorLines = nodes[i]!.stdout().split('\n').filter((l) => l.startsWith('{') && (JSON.parse(l) as { level: number }).level >= 50);
      assert.ok(errorLines.length <= 10 * MODES.length, `${names[i]}: ${errorLines.length} error lines:\n${errorLines.join('\n')}`);
    }
    const refused = sent.filter((s) => s.reply === '451 4.3.0').length;
    console.log(`# db restart (${MODES.join(' + ')} stop): ${sent.length} messages tried, ${accepted().length} accepted (all delivered), ${refused} refused 451 4.3.0 ` +
      `(${duringOutage.length} while down), ${duplicates} duplicate deliveries, ${refusedButDelivered} refused but delivered (commit answer lost)`);
  } finally {
    load = false;
    await Promise.all(senders);
  }
});
