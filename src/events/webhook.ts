/**
 * events/webhook — the HTTP sink: each batch is one POST of a JSON array (the
 * events exactly as stored), signed with the sink's secret over the attempt's
 * own timestamp (events/sign). Any 2xx acknowledges the whole batch; anything
 * else (another status, a refused connection, the timeout) does not.
 *
 * Does not retry or back off (events/dispatcher does).
 */
import type { WebhookSinkConfig } from '../config/event-sinks.js';
import { durationMs } from '../config/units.js';
import type { OutboxRow } from '../queue/event-outbox.js';
import { sign } from './sign.js';
import type { EventSink } from './sink.js';

export class WebhookSink implements EventSink {
  readonly kind = 'webhook';
  readonly name: string;
  readonly batch: number;
  readonly timeoutMs: number;

  constructor(private readonly cfg: WebhookSinkConfig, private readonly nowSec: () => number = () => Math.floor(Date.now() / 1000)) {
    this.name = cfg.name;
    this.batch = cfg.batch;
    this.timeoutMs = durationMs(cfg.timeout);
  }

  async send(rows: readonly OutboxRow[]): Promise<void> {
    const body = `[${rows.map((r) => r.body).join(',')}]`;
    const timestamp = this.nowSec();
    const res = await fetch(this.cfg.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Halcyon-Events/1',
        'x-halcyon-timestamp': String(timestamp),
        'x-halcyon-signature': sign(this.cfg.secret, timestamp, body),
      },
      body,
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    // Read (and drop) the answer, so the connection goes back to the pool.
    const text = await res.text().catch(() => '');
    if (res.status < 200 || res.status > 299) throw new Error(`HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
  }

  async close(): Promise<void> { /* fetch keeps no state of ours */ }
}
