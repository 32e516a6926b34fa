/**
 * delivery/dane — DANE for SMTP (RFC 7672): for an MX delivery, which MX
 * hosts must present a certificate matching their TLSA records, which may
 * be used with opportunistic TLS, and which may not be used at all.
 *
 * The questions go to the validating resolver (delivery/dnssec-query), whose
 * AD bit says "secure"; a SERVFAIL says the data is bogus or unobtainable.
 * The decisions are pure functions (`hostPolicy`, `domainPlan`), read against
 * RFC 7672 §2.2:
 *
 * MX RRset of the domain (§2.2.1; an empty one is the implicit MX, the domain itself):
 * | MX question answers                  | plan                                                      |
 * |--------------------------------------|-----------------------------------------------------------|
 * | SERVFAIL, or no reply                | `failed`: defer (the MX set may be forged or unreadable)  |
 * | not AD (insecure)                    | `insecure`: no DANE; MTA-STS and the TLS setting apply     |
 * | AD (secure), every host `none`       | `secure-no-tlsa`: as insecure                              |
 * | AD, any host not `none`              | `dane`: each host by the table below; MTA-STS not used     |
 *
 * Each MX host (§2.2.2; TLSA at `_PORT._tcp.HOST`):
 * | address (A) question | TLSA question                       | host policy                                 |
 * |----------------------|-------------------------------------|---------------------------------------------|
 * | SERVFAIL / no reply  | —                                   | `unusable`: not tried                       |
 * | not AD               | — (not asked)                       | `none`: opportunistic TLS as configured     |
 * | AD                   | SERVFAIL / no reply                 | `unusable`: not tried (never in plaintext)  |
 * | AD                   | not AD, NXDOMAIN, NODATA            | `none`                                      |
 * | AD                   | AD, usable DANE-TA/DANE-EE records  | `dane`: TLS required, the chain must match  |
 * | AD                   | AD, records, none usable            | `tls-required`: TLS, certificate unchecked  |
 *
 * A `dane` host whose certificate does not match is a failed host: the next
 * MX host is tried, and when none is left the recipients are deferred (never
 * delivered in plaintext nor over unauthenticated TLS).
 *
 * Precedence (RFC 8461 §2): a domain whose plan is `dane` is not subject to
 * its MTA-STS policy; any other plan leaves MTA-STS in charge.
 *
 * What it does not do: run the self-test that decides whether DANE is on at
 * all (delivery/dane-selftest), match certificates (delivery/dane-match),
 * or connect (delivery/connection, delivery/smtp-transport).
 */
import { parseTlsa, usableTlsa, type Tlsa } from './dane-match.js';
import { RCODE, RRTYPE, type DnsReply, type DnssecQuery } from './dnssec-query.js';
import type { NextHop } from './resolve.js';

/** One question's outcome as DANE reads it. */
export type Lookup =
  | { readonly kind: 'secure'; readonly reply: DnsReply }
  | { readonly kind: 'insecure'; readonly reply: DnsReply }
  | { readonly kind: 'failed'; readonly text: string };

export type HostPolicy =
  | { readonly kind: 'dane'; readonly records: readonly Tlsa[] }
  | { readonly kind: 'tls-required'; readonly why: string }
  | { readonly kind: 'none'; readonly why: string }
  | { readonly kind: 'unusable'; readonly text: string };

export type DanePlan =
  | { readonly kind: 'failed'; readonly text: string }
  | { readonly kind: 'insecure' }
  | { readonly kind: 'secure-no-tlsa' }
  | { readonly kind: 'dane'; readonly hosts: ReadonlyMap<string, HostPolicy> };

/** How a reply reads: SERVFAIL (and any code but NOERROR/NXDOMAIN) fails; AD means secure. */
export function readReply(reply: DnsReply, what: string): Lookup {
  if (reply.rcode !== RCODE.NOERROR && reply.rcode !== RCODE.NXDOMAIN) {
    const code = reply.rcode === RCODE.SERVFAIL ? 'SERVFAIL (bogus or unobtainable)' : `rcode ${reply.rcode}`;
    return { kind: 'failed', text: `${what}: ${code} from the validating resolver ${reply.server}` };
  }
  return reply.ad ? { kind: 'secure', reply } : { kind: 'insecure', reply };
}

/** Pure: an MX host's policy from its address and TLSA lookups (the second table above). */
export function hostPolicy(host: string, address: Lookup, tlsa: Lookup | undefined): HostPolicy {
  if (address.kind === 'failed') return { kind: 'unusable', text: `DANE: ${address.text}` };
  if (address.kind === 'insecure') return { kind: 'none', why: `the address of ${host} is not DNSSEC-signed` };
  if (tlsa === undefined) return { kind: 'none', why: 'no TLSA lookup' };
  if (tlsa.kind === 'failed') return { kind: 'unusable', text: `DANE: ${tlsa.text}` };
  if (tlsa.kind === 'insecure') return { kind: 'none', why: `the TLSA records of ${host} are not DNSSEC-signed` };
  const records = tlsa.reply.answers.filter((a) => a.type === RRTYPE.TLSA && a.data)
    .map((a) => parseTlsa(a.data!)).filter((t): t is Tlsa => t !== undefined);
  if (records.length === 0) return { kind: 'none', why: `${host} has no TLSA records` };
  const usable = usableTlsa(records);
  if (usable.length === 0) return { kind: 'tls-required', why: `${host} publishes TLSA records, none usable for SMTP (RFC 7672 §3.1.3)` };
  return { kind: 'dane', records: usable };
}

/** Pure: the domain's plan from its MX lookup and its hosts' policies (the first table above). */
export function domainPlan(mx: Lookup, hosts: ReadonlyMap<string, HostPolicy>): DanePlan {
  if (mx.kind === 'failed') return { kind: 'failed', text: `DANE: ${mx.text}` };
  if (mx.kind === 'insecure') return { kind: 'insecure' };
  // A host whose TLSA lookup failed may have records we cannot see: it is DANE's to refuse, not MTA-STS's to allow.
  const any = [...hosts.values()].some((p) => p.kind !== 'none');
  return any ? { kind: 'dane', hosts } : { kind: 'secure-no-tlsa' };
}

/** The TLSA owner name of a host for a port: `_25._tcp.mx.example.com`. */
export const tlsaName = (host: string, port: number): string => `_${port}._tcp.${host}`;

export class Dane {
  constructor(private readonly query: DnssecQuery) {}

  /** The plan for delivering `domain`'s mail to `hops` (its MX hosts, resolved). */
  async planFor(domain: string, hops: readonly NextHop[]): Promise<DanePlan> {
    const mx = await this.ask(domain, 'MX', `MX ${domain}`);
    if (mx.kind !== 'secure') return domainPlan(mx, new Map());
    const names = [...new Set(hops.map((h) => h.host))];
    const policies = await Promise.all(names.map(async (host) => {
      const port = hops.find((h) => h.host === host)!.port;
      const address = await this.ask(host, 'A', `A ${host}`);
      const tlsa = address.kind === 'secure' ? await this.ask(tlsaName(host, port), 'TLSA', `TLSA ${tlsaName(host, port)}`) : undefined;
      return [host, hostPolicy(host, address, tlsa)] as const;
    }));
    return domainPlan(mx, new Map(policies));
  }

  private async ask(name: string, type: 'MX' | 'A' | 'TLSA', what: string): Promise<Lookup> {
    try {
      return readReply(await this.query(name, type), what);
    } catch (err) {
      return { kind: 'failed', text: `${what}: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
}
