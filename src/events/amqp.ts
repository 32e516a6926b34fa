/**
 * events/amqp — the AMQP 0-9-1 sink (RabbitMQ): each event is one persistent
 * message on the configured exchange, routed by `routing_key` ("{type}" →
 * the event type), published with `mandatory` on a confirm channel. A batch
 * is acknowledged once the broker confirmed every message of it and returned
 * none (an unroutable event is not "taken": it waits until a queue is bound).
 *
 * One connection per sink, made on the first send and again after it breaks;
 * a broken connection or channel fails the batch in flight. Does not declare
 * exchanges or queues (the broker's operator does), nor retry (the dispatcher).
 */
import amqp from 'amqplib';
import type { AmqpSinkConfig } from '../config/event-sinks.js';
import { durationMs } from '../config/units.js';
import type { OutboxRow } from '../queue/event-outbox.js';
import type { EventSink } from './sink.js';

type Connection = Awaited<ReturnType<typeof amqp.connect>>;
type Channel = Awaited<ReturnType<Connection['createConfirmChannel']>>;

export class AmqpSink implements EventSink {
  readonly kind = 'amqp';
  readonly name: string;
  readonly batch: number;
  readonly timeoutMs: number;
  private conn: Connection | undefined;
  private channel: Channel | undefined;
  /** Why the channel broke, or a message came back unroutable, during the batch in flight. */
  private trouble: Error | undefined;

  constructor(private readonly cfg: AmqpSinkConfig) {
    this.name = cfg.name;
    this.batch = cfg.batch;
    this.timeoutMs = durationMs(cfg.timeout);
  }

  private async open(): Promise<Channel> {
    if (this.channel) return this.channel;
    const conn = await amqp.connect(this.cfg.url, { timeout: this.timeoutMs });
    // Without listeners an 'error' event would end the process; either one drops what we hold.
    const drop = (err?: Error) => {
      this.trouble ??= err ?? new Error('AMQP connection closed');
      if (this.conn === conn) { this.conn = undefined; this.channel = undefined; }
    };
    conn.on('error', drop);
    conn.on('close', drop);
    try {
      const ch = await conn.createConfirmChannel();
      ch.on('error', drop);
      ch.on('close', () => { if (this.channel === ch) { this.channel = undefined; void conn.close().catch(() => undefined); } });
      ch.on('return', (msg: { fields: { replyText?: string; routingKey: string } }) => {
        this.trouble ??= new Error(`unroutable: ${msg.fields.routingKey} (${msg.fields.replyText ?? 'NO_ROUTE'})`);
      });
      this.conn = conn;
      this.channel = ch;
      return ch;
    } catch (err) {
      await conn.close().catch(() => undefined);
      throw err;
    }
  }

  async send(rows: readonly OutboxRow[]): Promise<void> {
    this.trouble = undefined;
    const ch = await this.open();
    for (const r of rows) {
      ch.publish(this.cfg.exchange, this.cfg.routing_key.replaceAll('{type}', r.type), Buffer.from(r.body), {
        persistent: true, mandatory: true, contentType: 'application/json', messageId: r.eventId, type: r.type,
        timestamp: Math.floor(Date.now() / 1000),
      });
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        ch.waitForConfirms(),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no confirms in ${this.timeoutMs} ms`)), this.timeoutMs); }),
      ]);
    } catch (err) {
      await this.reset();
      throw this.trouble ?? err;
    } finally {
      clearTimeout(timer);
    }
    // A basic.return comes before the confirm of its message: seen by now.
    if (this.trouble) throw this.trouble;
  }

  private async reset(): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    this.channel = undefined;
    await conn?.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.reset();
  }
}
