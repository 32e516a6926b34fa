/**
 * config/event-sinks — the event sinks a configuration names ([events]), each
 * with its resolved name: the one place that turns `[[events.webhooks]]` and
 * `[[events.amqp]]` into a list, so the queue (which writes outbox rows per
 * sink) and events/ (which sends them) agree on the names.
 */
import type { Config } from './schema.js';

type Events = Config['events'];
export type WebhookSinkConfig = Events['webhooks'][number] & { readonly kind: 'webhook'; readonly name: string };
export type AmqpSinkConfig = Events['amqp'][number] & { readonly kind: 'amqp'; readonly name: string };
export type EventSinkConfig = WebhookSinkConfig | AmqpSinkConfig;

export function eventSinks(cfg: Config): EventSinkConfig[] {
  return [
    ...cfg.events.webhooks.map((w, i): WebhookSinkConfig => ({ ...w, kind: 'webhook', name: w.name ?? `webhook-${i + 1}` })),
    ...cfg.events.amqp.map((a, i): AmqpSinkConfig => ({ ...a, kind: 'amqp', name: a.name ?? `amqp-${i + 1}` })),
  ];
}
