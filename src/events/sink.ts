/**
 * events/sink — what the dispatcher (events/dispatcher) needs of a sink: send
 * one batch of outbox rows and resolve only once the far end took all of them
 * (a 2xx, a broker confirm). A rejection means "not acknowledged": the rows
 * are retried later, perhaps after a delivery that did happen (at least once).
 */
import type { OutboxRow } from '../queue/event-outbox.js';

export interface EventSink {
  readonly name: string;
  readonly kind: 'webhook' | 'amqp';
  /** Most rows per send. */
  readonly batch: number;
  /** How long one send may take (the dispatcher's lease on the rows is longer). */
  readonly timeoutMs: number;
  send(rows: readonly OutboxRow[]): Promise<void>;
  close(): Promise<void>;
}
