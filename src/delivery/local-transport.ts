/**
 * delivery/local-transport — delivers to local mailboxes (Maildir) as a
 * transport beside SMTP: the same batch in, the same per-recipient verdicts
 * out, so queue states, retries and DSNs work the same way for both.
 *
 * Quota is checked again at delivery (it was checked at RCPT, but mail may
 * have arrived since): a mailbox whose quota is reached → 552 5.2.2 failed, or
 * 452 4.2.2 deferred when the domain says `over_quota_reply = "452"`. A write
 * error defers (4.3.0).
 *
 * Mail quarantined by a DMARC policy at intake (its X-Halcyon-Quarantine
 * header) goes to the mailbox's Junk folder when `junk()` says so
 * (`[inbound] quarantine = "junk"`). Intake removes that header from every
 * incoming message, so only Halcyon's own mark moves mail.
 */
import type { Logger } from 'pino';
import { QUARANTINE_HEADER } from '../intake/headers.js';
import type { Mailboxes } from '../local/maildir.js';
import type { LastReply } from '../queue/model.js';
import type { BatchResult, OutboundBatch, RecipientVerdict, RecordVerdicts, Transport } from './types.js';

export class LocalTransport implements Transport {
  /** `mailboxes` is read per recipient: a reload (SIGHUP) may have rebuilt them from new [[domains]]. */
  constructor(private readonly mailboxesNow: () => Mailboxes, private readonly log: Logger, private readonly junk: () => boolean = () => false) {}

  private get mailboxes(): Mailboxes {
    return this.mailboxesNow();
  }

  async deliver(batch: OutboundBatch, record: RecordVerdicts): Promise<BatchResult> {
    const verdicts = new Map<number, RecipientVerdict>();
    for (const r of batch.recipients) verdicts.set(r.id, await this.one(r.address, batch));
    await record(verdicts);
    return {};
  }

  private async one(address: string, batch: OutboundBatch): Promise<RecipientVerdict> {
    const reply = (code: number, enhanced: string, text: string): LastReply => ({ code, enhanced, text, host: 'local', command: 'delivery' });
    // Aliases were expanded at RCPT time: the queued address is a mailbox's own (an alias of the same
    // name, "keep a copy" or one added to the aliases file since, does not take it away).
    const found = this.mailboxes.mailbox(address);
    if (!found) {
      // A mailbox removed from the config since then lands here.
      return { kind: 'failed', reply: reply(550, '5.1.1', 'User unknown in local mailbox table') };
    }
    // The same test as at RCPT time without SIZE (quota reached), so what was accepted is not bounced
    // later for a reason RCPT could have given; a message may thus take a mailbox slightly past its quota.
    if (this.mailboxes.mailboxFull(found, 0)) {
      return this.mailboxes.overQuotaReply(found.domain) === '452'
        ? { kind: 'deferred', reply: reply(452, '4.2.2', 'Mailbox full') }
        : { kind: 'failed', reply: reply(552, '5.2.2', 'Mailbox full') };
    }
    try {
      const md = this.mailboxes.maildir(found.domain, found.user);
      const folder = this.junk() && quarantined(batch.body) ? 'Junk' as const : undefined;
      const { path } = await md.deliver(batch.body, { deliveredTo: address, returnPath: batch.message.sender, folder });
      return { kind: 'delivered', reply: reply(250, '2.0.0', `delivered to maildir (${path.split('/').slice(-3).join('/')})`) };
    } catch (err) {
      this.log.error({ event: 'local_delivery_error', queue_id: batch.message.id, to: address, err: (err as Error).message }, 'local delivery failed');
      return { kind: 'deferred', reply: reply(451, '4.3.0', `Mail system error: ${(err as NodeJS.ErrnoException).code ?? 'write failed'}`) };
    }
  }

  async close(): Promise<void> {}
}

const QUARANTINED = new RegExp(`^${QUARANTINE_HEADER}:`, 'im');

/** Whether the message's header block carries the quarantine mark. */
function quarantined(body: Buffer): boolean {
  const end = body.indexOf('\r\n\r\n');
  return QUARANTINED.test(body.toString('latin1', 0, end < 0 ? Math.min(body.length, 65_536) : end));
}
