/**
 * inbound/policy — who may send to whom: the relay decision, as a pure
 * function of the client and the recipient.
 *
 * Never an open relay: a client that is neither in `[relay] networks` nor
 * authenticated may only send to local domains, and the classic tricks that
 * make a local-looking address route elsewhere (percent hack `a%b@local`, bang
 * paths `b!a@local`, source routes `@a:b@c`, quoted local parts holding `@`,
 * address literals) are refused to it with 554 5.7.1. Mailbox existence and
 * quota are the directory's job (local/), not this file's.
 *
 * A domain whose mail Halcyon hands to a mailbox store over LMTP (an exact
 * `routes` entry with protocol = "lmtp", e.g. Dovecot) is a final destination
 * like a local domain: anyone may send to it, the same tricks are refused, and
 * it is queued to its route (the store answers for its mailboxes).
 */
import { BlockList, isIPv4 } from 'node:net';
import { parseCidr } from '../config/units.js';
import type { Path } from '../smtp/address.js';

export interface Refusal {
  readonly code: number;
  readonly enhanced: string;
  readonly text: string;
}

export type RelayVerdict = { readonly kind: 'local' } | { readonly kind: 'relay' } | { readonly kind: 'refuse'; readonly refusal: Refusal };

const RELAY_DENIED: Refusal = { code: 554, enhanced: '5.7.1', text: 'Relay access denied' };

/** Builds a matcher for `[relay] networks` ("127.0.0.0/8", "::1/128", "192.0.2.7"). */
export function networkMatcher(cidrs: readonly string[]): (ip: string) => boolean {
  const list = new BlockList();
  for (const c of cidrs) {
    // The schema refuses what parseCidr does not read, so a running server never gets here with one.
    const n = parseCidr(c);
    if (!n) throw new RangeError(`relay.networks: not an address or CIDR: ${JSON.stringify(c)}`);
    list.addSubnet(n.address, n.bits, n.family);
  }
  return (ip: string) => {
    const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    const addr = v4mapped ? v4mapped[1]! : ip;
    return list.check(addr, isIPv4(addr) ? 'ipv4' : 'ipv6');
  };
}

export function relayVerdict(input: {
  readonly path: Path;
  /** In relay networks or authenticated. */
  readonly mayRelay: boolean;
  readonly isLocalDomain: (domain: string) => boolean;
  /** Domains delivered to a mailbox store over LMTP: accepted from anyone, queued as 'relay' to their route. */
  readonly isStoreDomain?: (domain: string) => boolean;
}): RelayVerdict {
  const mb = input.path.mailbox;
  if (!mb) return { kind: 'refuse', refusal: { code: 501, enhanced: '5.1.3', text: 'Bad recipient address syntax' } };
  // <postmaster> without a domain is always ours (RFC 5321 §4.5.1).
  if (mb.domain === '') return { kind: 'local' };
  const local = !mb.literal && input.isLocalDomain(mb.domain);
  if (input.mayRelay) return { kind: local ? 'local' : 'relay' };
  const store = !local && !mb.literal && (input.isStoreDomain?.(mb.domain) ?? false);
  if (!local && !store) return { kind: 'refuse', refusal: RELAY_DENIED };
  const tricky = input.path.sourceRoute !== undefined || /[%!@]/.test(mb.local);
  if (tricky) return { kind: 'refuse', refusal: RELAY_DENIED };
  return { kind: store ? 'relay' : 'local' };
}
