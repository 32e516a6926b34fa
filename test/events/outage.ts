/**
 * test/events/outage — the outage every sink must survive (issue #24): the
 * real `halcyon serve` relays 100 messages (10 to recipients the remote
 * refuses: bounced, with a DSN) while the sink is down for `downMs`; halcyon is
 * restarted (SIGTERM) after the first 50 and killed (SIGKILL) while the next 50
 * are delivered, then started again. Once the sink is back, every recipient's
 * `received` and final event must arrive (counted by event id), every bounced
 * message must have its `dsn_sent`, `halcyon events status` must have shown
 * the events waiting and show none at the end, and an id may arrive twice
 * only if the sink lost the acknowledgment of a batch that held it.
 *
 * The sink side (an HTTP receiver, a RabbitMQ queue) is given by the test.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { HalcyonEvent } from '../../src/queue/event.js';
import { runCli, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { waitUntil } from '../support/postfix.js';
import { startRemote } from '../support/remote-smtp.js';
import { RawSmtpClient } from '../support/smtp-client.js';

export interface SinkUnderTest {
  /** The sink's name in the configuration. */
  readonly name: string;
  /** The `[[events.…]]` block. */
  readonly toml: string;
  down(): Promise<void>;
  up(): Promise<void>;
  /** Every event received so far, duplicates included, in arrival order. */
  received(): readonly HalcyonEvent[];
  /** Event ids in a batch whose acknowledgment the sink lost on purpose (they may come again). */
  lostAck(): ReadonlySet<string>;
}

export interface OutageFigures {
  readonly events: number;
  readonly distinct: number;
  readonly duplicates: number;
  readonly waitingWhileDown: number;
}

const MESSAGES = 100;
const SENDER = 'app@sink.test';
const isBounce = (i: number) => i % 10 === 9;
const rcptOf = (i: number) => (isBounce(i) ? `bounce${i}@sink.test` : `r${i}@sink.test`);

async function submit(port: number, from: number, to: number): Promise<void> {
  const c = await RawSmtpClient.connect(port);
  try {
    await c.read();
    for (let i = from; i < to; i++) {
      const end = await c.send({
        from: SENDER, to: [rcptOf(i)],
        content: `From: ${SENDER}\r\nTo: ${rcptOf(i)}\r\nSubject: event ${i}\r\nMessage-ID: <ev${i}@sink.test>\r\n\r\nhello ${i}\r\n`,
      });
      assert.equal(end.code, 250, `message ${i}: ${end.lines.join(' ')}`);
    }
    await c.cmd('QUIT');
  } finally {
    c.close();
  }
}

async function waiting(configFile: string, sink: string): Promise<number> {
  const r = await runCli(['events', 'status', '--json', '--config', configFile]);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { sink: string; depth: number }[];
  return rows.find((x) => x.sink === sink)?.depth ?? -1;
}

export async function outageScenario(sink: SinkUnderTest, downMs: number): Promise<OutageFigures> {
  const remote = await startRemote({ delayMs: 5, rcpt: (r) => (r.startsWith('bounce') ? '550 5.1.1 no such user here' : undefined) });
  const children: SpawnedHalcyon[] = [];
  const toml = `
node_id = "events-test"
[relay]
networks = ["127.0.0.0/8"]
[delivery]
tls = "none"
queue_scan_interval = "200ms"
[routes]
"sink.test" = "127.0.0.1:${remote.port}"
[events]
retry_max = "2s"
${sink.toml}
`;
  try {
    await sink.down();
    const downAt = Date.now();
    const first = await spawnHalcyon(toml, { readyTimeoutMs: 30_000 });
    children.push(first);
    const dataDir = first.dataDir;
    const delivered = () => remote.transactions.filter((t) => t.reply?.startsWith('250') && t.mailFrom !== '').length;
    await submit(first.port, 0, 50);
    await remote.waitFor(() => delivered() >= 45, 60_000);
    // A restart in the middle of the outage.
    assert.equal((await first.kill('SIGTERM')).code, 0, first.stderr());
    const second = await spawnHalcyon(toml, { dataDir, readyTimeoutMs: 30_000 });
    children.push(second);
    await submit(second.port, 50, MESSAGES);
    await remote.waitFor(() => delivered() >= 60, 60_000);
    // And a kill -9 while the rest are being delivered.
    assert.equal((await second.kill('SIGKILL')).signal, 'SIGKILL');
    const third = await spawnHalcyon(toml, { dataDir, readyTimeoutMs: 30_000 });
    children.push(third);
    const accepted = () => new Set(remote.transactions.filter((t) => t.reply?.startsWith('250')).flatMap((t) => t.rcpts));
    await remote.waitFor(() => Array.from({ length: MESSAGES }, (_, i) => i).filter((i) => !isBounce(i)).every((i) => accepted().has(rcptOf(i))), 60_000);
    assert.equal(sink.received().length, 0, 'events arrived while the sink was down');
    const waitingWhileDown = await waiting(third.configFile, sink.name);
    assert.ok(waitingWhileDown >= 2 * MESSAGES, `events status shows ${waitingWhileDown} waiting for ${sink.name}`);

    await new Promise((r) => setTimeout(r, Math.max(0, downAt + downMs - Date.now())));
    await sink.up();
    const distinct = () => new Map(sink.received().map((e) => [e.id, e]));
    const finalFor = (rcpt: string) => [...distinct().values()].filter((e) => e.recipient === rcpt && (e.type === 'delivered' || e.type === 'bounced'));
    await waitUntil(() => Array.from({ length: MESSAGES }, (_, i) => rcptOf(i)).every((r) => finalFor(r).length > 0), 'every recipient\'s final event', 90_000);
    await waitUntil(async () => (await waiting(third.configFile, sink.name)) === 0, 'the outbox to empty', 60_000);

    const events = [...distinct().values()];
    for (let i = 0; i < MESSAGES; i++) {
      const mine = events.filter((e) => e.recipient === rcptOf(i));
      const received = mine.filter((e) => e.type === 'received');
      const final = mine.filter((e) => e.type === (isBounce(i) ? 'bounced' : 'delivered'));
      assert.equal(received.length, 1, `${rcptOf(i)}: received ${JSON.stringify(received)}`);
      assert.equal(final.length, 1, `${rcptOf(i)}: final ${JSON.stringify(mine)}`);
      const [r, f] = [received[0]!, final[0]!];
      assert.equal(r.queue_id, f.queue_id);
      assert.equal(r.message_id, `<ev${i}@sink.test>`);
      assert.equal(r.sender, SENDER);
      assert.equal(f.node, 'events-test');
      assert.equal(f.domain, 'sink.test');
      assert.ok(f.destination, 'destination');
      assert.equal(f.reply?.code, isBounce(i) ? 550 : 250);
      assert.match(f.reply?.host ?? '', new RegExp(`\\[127\\.0\\.0\\.1\\]:${remote.port}$`));
      assert.ok(f.attempt !== undefined && f.attempt >= 1);
      if (isBounce(i)) {
        assert.equal(f.reply?.enhanced, '5.1.1');
        assert.equal(f.reply?.phase, 'RCPT TO');
        assert.ok(events.some((e) => e.type === 'dsn_sent' && e.queue_id === f.queue_id), `${rcptOf(i)}: no dsn_sent`);
      }
    }
    const counts = new Map<string, number>();
    for (const e of sink.received()) counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
    const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    const lost = sink.lostAck();
    assert.deepEqual(duplicated.filter((id) => !lost.has(id)), [], 'duplicates of events whose acknowledgment was not lost');
    assert.equal((await third.kill('SIGTERM')).code, 0, third.stderr());
    rmSync(dataDir, { recursive: true, force: true });
    return { events: sink.received().length, distinct: counts.size, duplicates: sink.received().length - counts.size, waitingWhileDown };
  } finally {
    for (const c of children) await c.kill('SIGKILL');
    await remote.close();
  }
}
