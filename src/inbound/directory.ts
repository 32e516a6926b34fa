/**
 * inbound/directory — answers RCPT-time questions about local addresses from
 * the configured mailboxes: unknown user (550 5.1.1), mailbox full (552 5.2.2
 * or 452 4.2.2 per domain), or what the address becomes in the queue (local
 * mailboxes as `local:<domain>` destinations, alias targets that are remote
 * with their own destination keys).
 *
 * Checking at RCPT time is what keeps Halcyon from backscatter: nothing is
 * accepted that will only bounce later for a reason known now.
 */
import type { Config } from '../config/schema.js';
import { destinationKey, routeFor } from '../delivery/route.js';
import type { Mailboxes } from '../local/maildir.js';
import type { Mailbox } from '../smtp/address.js';
import { domainOf } from '../smtp/address.js';
import type { LocalTarget, RecipientDirectory } from './envelope.js';

export const localDestination = (domain: string): string => `local:${domain.toLowerCase()}`;

export function createDirectory(cfg: Config, mailboxes: Mailboxes): RecipientDirectory {
  const firstLocal = cfg.domains[0]?.name ?? cfg.hostname;
  return {
    isLocalDomain: (d) => mailboxes.isLocalDomain(d),
    isStoreDomain: (d) => {
      const r = routeFor(d, cfg.routes);
      return r !== undefined && r.matched !== '*' && r.protocol === 'lmtp';
    },
    destinationOf: (d) => destinationKey(d, cfg.routes),
    resolveLocal(mb: Mailbox, declaredSize) {
      const address = mb.domain === '' ? `postmaster@${firstLocal}` : `${mb.local}@${mb.domain}`;
      const x = mailboxes.expand(address);
      if (x.mailboxes.length === 0 && x.remote.length === 0) {
        return { ok: false, refusal: { code: 550, enhanced: '5.1.1', text: `<${address}>: Recipient address rejected: User unknown` } };
      }
      if (x.remote.length === 0 && x.mailboxes.every((b) => mailboxes.mailboxFull(b, declaredSize ?? 0))) {
        const temp = mailboxes.overQuotaReply(domainOf(address)) === '452';
        return { ok: false, refusal: { code: temp ? 452 : 552, enhanced: temp ? '4.2.2' : '5.2.2', text: `<${address}>: Mailbox full` } };
      }
      const targets: LocalTarget[] = [
        ...x.mailboxes.map((b) => ({ address: `${b.user}@${b.domain}`, destination: localDestination(b.domain) })),
        ...x.remote.map((r) => ({ address: r, destination: destinationKey(domainOf(r), cfg.routes) })),
      ];
      return { ok: true, targets };
    },
  };
}
