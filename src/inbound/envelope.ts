/**
 * inbound/envelope — the transaction being built: the sender, its ESMTP
 * parameters and the recipients accepted so far, with local addresses
 * already resolved (aliases expanded, as Postfix's cleanup does with
 * virtual_alias_maps) and each recipient's destination key set.
 *
 * Knows nothing of sockets. The directory that says what is local, and how
 * full a mailbox is, is handed in (local/ implements it).
 */
import type { EnvelopeParams, NewRecipient } from '../queue/model.js';
import { formatMailbox, type Mailbox } from '../smtp/address.js';
import type { MailParams, RcptParams } from '../smtp/params.js';
import type { Refusal } from './policy.js';

export interface LocalTarget {
  readonly address: string;
  readonly destination: string;
}

export interface RecipientDirectory {
  isLocalDomain(domain: string): boolean;
  /** A domain Halcyon hands to a mailbox store over LMTP (an exact LMTP route): a final destination for anyone's mail. */
  isStoreDomain?(domain: string): boolean;
  /** What a local address becomes in the queue, or why it is refused (550 5.1.1, 552 5.2.2 …). */
  resolveLocal(mailbox: Mailbox, declaredSize: number | undefined): { ok: true; targets: readonly LocalTarget[] } | { ok: false; refusal: Refusal };
  /** The destination key of a remote domain (the domain, or the route it goes through). */
  destinationOf(domain: string): string;
}

export class Envelope {
  readonly sender: string;
  private readonly list: NewRecipient[] = [];
  private readonly seen = new Set<string>();
  private readonly forwarders = new Set<string>();
  private accepted = 0;

  constructor(sender: Mailbox | undefined, readonly params: MailParams) {
    this.sender = sender ? formatMailbox(sender) : '';
  }

  /** Recipients accepted by RCPT (before expansion), for max_recipients. */
  get count(): number {
    return this.accepted;
  }

  get recipients(): readonly NewRecipient[] {
    return this.list;
  }

  /** Local domains whose aliases sent a copy to a remote address (their mail is forwarded: intake/arc seals it). */
  get forwardedBy(): readonly string[] {
    return [...this.forwarders];
  }

  get firstAddress(): string | undefined {
    return this.list[0]?.address;
  }

  get queueParams(): EnvelopeParams {
    const p = this.params;
    return { body: p.body, smtputf8: p.smtputf8, ret: p.ret, envid: p.envid };
  }

  addRecipient(mb: Mailbox, params: RcptParams, kind: 'local' | 'relay', dir: RecipientDirectory): { ok: true } | { ok: false; refusal: Refusal } {
    const address = formatMailbox(mb);
    let targets: readonly LocalTarget[];
    if (kind === 'local') {
      const r = dir.resolveLocal(mb, this.params.size);
      if (!r.ok) return r;
      targets = r.targets;
      if (targets.some((t) => !t.destination.startsWith('local:'))) this.forwarders.add(mb.domain.toLowerCase());
    } else {
      targets = [{ address, destination: dir.destinationOf(mb.domain) }];
    }
    this.accepted++;
    for (const t of targets) {
      const key = t.address.toLowerCase();
      // The same mailbox named twice gets one copy (Postfix does the same).
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      const orcpt = params.orcpt ?? (t.address !== address ? `rfc822;${address}` : undefined);
      this.list.push({ address: t.address, destination: t.destination, orcpt, notify: params.notify });
    }
    return { ok: true };
  }
}
