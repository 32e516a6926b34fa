/**
 * scheduler/batches — groups claimed recipients into delivery batches: one
 * message, one route key (the key a recipient is queued under: its domain,
 * route or local mailbox) and one domain, at most `maxPerBatch` recipients.
 * Pure. Which destination (host set) a route key goes to is
 * destination/service's, asked afterwards.
 */
import type { RecipientRow } from '../queue/model.js';
import { domainOf } from '../smtp/address.js';

export interface Batch {
  /** The route key its recipients are queued under (RecipientRow.destination). */
  readonly routeKey: string;
  readonly domain: string;
  readonly messageId: string;
  readonly recipients: RecipientRow[];
}

/** Keeps claim order (oldest due first) between batches. */
export function groupBatches(rows: readonly RecipientRow[], maxPerBatch: number): Batch[] {
  const open = new Map<string, Batch>();
  const out: Batch[] = [];
  for (const r of rows) {
    // Routed destinations may carry several domains; a batch keeps to one domain so RCPTs share a route and a reply context.
    const domain = domainOf(r.address);
    const key = `${r.destination}\u0000${r.messageId}\u0000${domain}`;
    let b = open.get(key);
    if (!b || b.recipients.length >= maxPerBatch) {
      b = { routeKey: r.destination, domain, messageId: r.messageId, recipients: [] };
      open.set(key, b);
      out.push(b);
    }
    b.recipients.push(r);
  }
  return out;
}
