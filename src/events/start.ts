/**
 * events/start — builds the configured sinks ([events], config/event-sinks)
 * and starts their dispatcher over the queue's outbox. Nothing configured →
 * nothing runs (and the queue writes no events).
 */
import type { Logger } from 'pino';
import { eventSinks } from '../config/event-sinks.js';
import type { Config } from '../config/schema.js';
import { durationMs } from '../config/units.js';
import type { EventOutbox } from '../queue/event-outbox.js';
import { AmqpSink } from './amqp.js';
import { EventDispatcher, type DispatcherDeps } from './dispatcher.js';
import type { EventSink } from './sink.js';
import { WebhookSink } from './webhook.js';

export function buildSinks(cfg: Config): EventSink[] {
  return eventSinks(cfg).map((s) => (s.kind === 'webhook' ? new WebhookSink(s) : new AmqpSink(s)));
}

export function startEvents(cfg: Config, outbox: EventOutbox, log: Logger,
  hooks: Pick<DispatcherDeps, 'onSent' | 'onFailed' | 'clock'> = {}): EventDispatcher {
  const dispatcher = new EventDispatcher({
    outbox, sinks: buildSinks(cfg), node: cfg.node_id, retryMaxMs: durationMs(cfg.events.retry_max), log, ...hooks,
  });
  dispatcher.start();
  return dispatcher;
}
