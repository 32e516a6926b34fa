/**
 * The AMQP sink through an outage (test/events/outage) against the machine's
 * real RabbitMQ (127.0.0.1:5672, guest/guest): halcyon reaches the broker
 * through a TCP relay the test cuts for 30 s; the test's own consumer reads
 * the events from a queue bound to an exchange of its own (unique names,
 * deleted at the end). Each message must carry the event id as its
 * message-id and be persistent. Skips when RabbitMQ does not answer (fails
 * under HALCYON_REQUIRE_INTEROP=1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import type { HalcyonEvent } from '../../src/queue/event.js';
import { tcpRelay, type TcpRelay } from '../support/tcp-relay.js';
import { outageScenario } from './outage.js';

const BROKER = 'amqp://guest:guest@127.0.0.1:5672/';

async function brokerProblem(): Promise<string | undefined> {
  try {
    const c = await amqp.connect(BROKER, { timeout: 3_000 });
    await c.close();
    return undefined;
  } catch (err) {
    const why = `RabbitMQ not reachable at 127.0.0.1:5672: ${(err as Error).message}`;
    if (process.env.HALCYON_REQUIRE_INTEROP === '1') throw new Error(`${why}, and HALCYON_REQUIRE_INTEROP=1`);
    return why;
  }
}

const skip = await brokerProblem();

test('AMQP: RabbitMQ unreachable for 30 s, a restart and a kill -9: every event is confirmed and consumed once', { skip, timeout: 240_000 }, async () => {
  const name = `halcyon-test-${randomBytes(6).toString('hex')}`;
  const conn = await amqp.connect(BROKER);
  const ch = await conn.createChannel();
  await ch.assertExchange(name, 'topic', { durable: false, autoDelete: false });
  await ch.assertQueue(name, { durable: false, autoDelete: false });
  await ch.bindQueue(name, name, 'halcyon.#');
  const received: HalcyonEvent[] = [];
  let wrongProperties = 0;
  await ch.consume(name, (msg) => {
    if (!msg) return;
    const e = JSON.parse(msg.content.toString('utf8')) as HalcyonEvent;
    if (msg.properties.messageId !== e.id || msg.properties.deliveryMode !== 2 || msg.fields.routingKey !== `halcyon.${e.type}`) wrongProperties++;
    received.push(e);
    ch.ack(msg);
  });
  let relay: TcpRelay | undefined;
  try {
    relay = await tcpRelay({ host: '127.0.0.1', port: 5672 });
    const r = relay;
    const figures = await outageScenario({
      name: 'bus',
      toml: `[[events.amqp]]\nname = "bus"\nurl = "amqp://guest:guest@127.0.0.1:${r.port}/"\nexchange = "${name}"\nrouting_key = "halcyon.{type}"\nbatch = 50\ntimeout = "5s"\n`,
      down: () => r.cut(),
      up: () => r.restore(),
      received: () => received,
      lostAck: () => new Set(),
    }, 30_000);
    assert.equal(wrongProperties, 0, 'messages whose message-id, persistence or routing key is not the event\'s');
    assert.equal(figures.duplicates, 0);
    process.stdout.write(`# amqp outage: ${figures.events} events consumed, ${figures.distinct} distinct, ${figures.duplicates} duplicates, ${figures.waitingWhileDown} waiting while down\n`);
  } finally {
    await relay?.close();
    await ch.deleteQueue(name).catch(() => undefined);
    await ch.deleteExchange(name).catch(() => undefined);
    await conn.close().catch(() => undefined);
  }
});
