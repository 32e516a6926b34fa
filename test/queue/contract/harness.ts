/**
 * test/queue/contract/harness — what a contract suite needs from one queue
 * implementation: a fresh, empty queue per test, a second handle on the same
 * database (another node), a settable clock, and clean-up. The suites
 * (message-store, recipient-queue, destination-gate) are written once
 * against this and run for every implementation (contract-*.test.ts).
 * It asserts nothing itself.
 */
import type { NewMessage, NewRecipient } from '../../../src/queue/model.js';
import type { Queue } from '../../../src/queue/store.js';

export interface QueueUnderTest {
  readonly queue: Queue;
  /** Another handle on the same database, as a second node would have. Closed by close(). */
  open(): Promise<Queue>;
  /** The clock the queue reads (enqueue times, updated_at). */
  readonly clock: { now: number };
  close(): Promise<void>;
}

export interface Implementation {
  readonly name: string;
  /** Undefined (with a reason) when the implementation cannot run here: the suite skips. */
  readonly skip?: string;
  fresh(): Promise<QueueUnderTest>;
}

export const T0 = 1_700_000_000_000;

export function message(recipients: NewRecipient[] = [{ address: 'bob@example.test', destination: 'example.test' }], over: Partial<NewMessage> = {}): NewMessage {
  return {
    sender: 'alice@sender.test',
    params: { smtputf8: false },
    receivedAt: T0,
    trace: { clientIp: '127.0.0.1', clientHelo: 'client.test', protocol: 'ESMTP' },
    body: Buffer.from('Subject: hi\r\n\r\nhello\r\n'),
    recipients,
    ...over,
  };
}

/** Runs fn on a fresh queue and always cleans up. */
export async function withQueue(impl: Implementation, fn: (q: QueueUnderTest) => Promise<void>): Promise<void> {
  const q = await impl.fresh();
  try {
    await fn(q);
  } finally {
    await q.close();
  }
}

export const reply = { code: 250, enhanced: '2.0.0', text: 'ok', host: 'mx.example.test[127.0.0.1]:25' };

/** The event sinks every contract queue writes for: one takes everything, one only bounces (queue/event). */
export const EVENT_ROUTES = {
  node: 'node-a',
  sinks: [
    { name: 'all', events: ['received', 'delivered', 'deferred', 'bounced', 'expired', 'suppressed', 'dsn_sent', 'rule_triggered'] },
    { name: 'bounces', events: ['bounced'] },
  ],
} as const;
