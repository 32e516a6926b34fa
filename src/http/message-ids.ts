/**
 * http/message-ids — finds queued messages by their Message-ID for the
 * admin search (`GET /api/queue?q=`, `queue list --search`). The Message-ID
 * is in the stored header, not in the queue's rows: each body is read once
 * and its Message-ID remembered (a body never changes), so a dashboard that
 * searches every few seconds reads only the bodies of messages that arrived
 * since its last search. Forgets messages that left the queue.
 *
 * Matches ids only; the rows (id, sender, recipients) are searched by the
 * queue itself (QueueFilter.search).
 */
import type { AdminQueue } from '../queue/admin-queue.js';

/** Bodies read at once when filling the index: the queue thread serves other work between. */
const READS_AT_ONCE = 16;

export class MessageIdIndex {
  /** Queue id → its Message-ID header, lower case ("" when it has none or is gone). */
  private readonly byId = new Map<string, string>();

  /** `messageIdOf`: the Message-ID in a stored message ("" when none), http/admin's header reader. */
  constructor(private readonly store: Pick<AdminQueue, 'messages' | 'recipients'>, private readonly messageIdOf: (body: Buffer) => string) {}

  /** Queue ids of the messages whose Message-ID contains `q` (lower case). */
  async matching(q: string): Promise<string[]> {
    const ids = await this.store.recipients.listMessageIds();
    const unknown = ids.filter((id) => !this.byId.has(id));
    for (let i = 0; i < unknown.length; i += READS_AT_ONCE) {
      await Promise.all(unknown.slice(i, i + READS_AT_ONCE).map(async (id) => {
        // Gone since it was listed: nothing to match.
        this.byId.set(id, await this.store.messages.getBody(id).then((b) => this.messageIdOf(b).toLowerCase(), () => ''));
      }));
    }
    if (this.byId.size > ids.length) {
      const live = new Set(ids);
      for (const id of this.byId.keys()) if (!live.has(id)) this.byId.delete(id);
    }
    return ids.filter((id) => this.byId.get(id)?.includes(q));
  }
}
