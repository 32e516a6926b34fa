/**
 * delivery/dnssec-query — one DNS question to a configured recursive
 * resolver, answered with what node:dns (c-ares) does not expose: the
 * response code and the header's AD ("authentic data", RFC 4035 §3.2.3)
 * bit, plus the answer records (TLSA data as raw bytes). DANE (delivery/dane)
 * asks its MX, address and TLSA questions here.
 *
 * The query sets RD and AD (RFC 6840 §5.7: a validating resolver then sets
 * AD on answers it validated, without the client asking for the signatures
 * with DO) and carries an EDNS OPT record offering 1232-octet UDP answers.
 * It goes over UDP from an ephemeral port to each server in order; a reply
 * from another address or port, with another id, or that does not parse is
 * ignored; a truncated (TC) reply is asked again over TCP. The first server
 * that replies decides (a SERVFAIL is a reply: the resolver found the data
 * bogus or could not get it — another resolver is not asked to overrule it).
 * dns2's Packet encodes the query and decodes the reply; its clients cannot
 * set AD, so the transport is here.
 *
 * What it does not do: validate anything itself (the AD bit is trusted only
 * because the operator configured this resolver and the startup self-test
 * showed it validates — delivery/dane-selftest), cache, follow CNAMEs (the
 * resolver does), or decide what an answer means for delivery (delivery/dane).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import dns2 from 'dns2';

const { Packet } = dns2;

/** Record types asked here, by number (dns2 has no TLSA). */
export const RRTYPE = { A: 1, MX: 15, AAAA: 28, TLSA: 52 } as const;
export type RrType = keyof typeof RRTYPE;

/** RFC 1035 §4.1.1 response codes seen here. */
export const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3 } as const;

export interface AnswerRecord {
  readonly name: string;
  readonly type: number;
  readonly ttl: number;
  /** A/AAAA: the address; MX: the exchange; CNAME: the target; other types: absent. */
  readonly text?: string;
  /** TLSA and other types dns2 does not decode: the RDATA octets. */
  readonly data?: Buffer;
}

export interface DnsReply {
  readonly rcode: number;
  /** The resolver says it validated the answer (DNSSEC "secure"). */
  readonly ad: boolean;
  readonly answers: readonly AnswerRecord[];
  /** "127.0.0.1:5353": who answered. */
  readonly server: string;
}

/** No server replied (timeouts, refused sockets). */
export class DnsNoReplyError extends Error {
  readonly code = 'DNS_NO_REPLY';
  constructor(readonly detail: string) {
    super(detail);
  }
}

export type DnssecQuery = (name: string, type: RrType) => Promise<DnsReply>;

export interface DnsServer {
  readonly host: string;
  readonly port: number;
}

const EDNS_UDP_SIZE = 1232;

function encodeQuery(id: number, name: string, type: RrType): Buffer {
  const q = new Packet();
  q.header.id = id;
  q.header.rd = 1;
  (q.header as unknown as { ad: number }).ad = 1;
  q.questions.push({ name, type: RRTYPE[type], class: Packet.CLASS.IN } as dns2.Packet.Question);
  q.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: EDNS_UDP_SIZE }));
  return q.toBuffer();
}

function toReply(p: dns2.Packet, server: string): DnsReply {
  const answers = p.answers.map((r): AnswerRecord => {
    const text = r.address ?? r.exchange ?? r.domain;
    return {
      name: r.name.replace(/\.$/, '').toLowerCase(), type: r.type, ttl: r.ttl,
      ...(typeof text === 'string' ? { text: text.replace(/\.$/, '').toLowerCase() } : {}),
      ...(Buffer.isBuffer(r.data) ? { data: r.data } : {}),
    };
  });
  const h = p.header as dns2.Packet.Header & { ad?: number };
  return { rcode: h.rcode & 0xf, ad: h.ad === 1, answers, server };
}

/** One UDP exchange; resolves to the reply, 'truncated', or rejects on timeout. */
function askUdp(server: DnsServer, query: Buffer, id: number, timeoutMs: number): Promise<dns2.Packet | 'truncated'> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    const timer = setTimeout(() => finish(new DnsNoReplyError(`no reply from ${label(server)} within ${timeoutMs}ms`)), timeoutMs);
    timer.unref();
    const finish = (r: dns2.Packet | 'truncated' | Error): void => {
      clearTimeout(timer);
      sock.close();
      if (r instanceof Error) reject(r); else resolve(r);
    };
    sock.on('message', (msg, rinfo) => {
      if (rinfo.port !== server.port || rinfo.address !== server.host) return;
      let p: dns2.Packet;
      try {
        p = Packet.parse(msg);
      } catch {
        return;
      }
      if (p.header.id !== id || p.header.qr !== 1) return;
      finish(p.header.tc ? 'truncated' : p);
    });
    sock.on('error', (err) => finish(new DnsNoReplyError(`${label(server)}: ${err.message}`)));
    sock.send(query, server.port, server.host);
  });
}

/** One TCP exchange (RFC 1035 §4.2.2: two-octet length prefix). */
function askTcp(server: DnsServer, query: Buffer, id: number, timeoutMs: number): Promise<dns2.Packet> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: server.host, port: server.port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new DnsNoReplyError(`no reply over TCP from ${label(server)} within ${timeoutMs}ms`)), timeoutMs);
    timer.unref();
    const finish = (r: dns2.Packet | Error): void => {
      clearTimeout(timer);
      sock.destroy();
      if (r instanceof Error) reject(r); else resolve(r);
    };
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      try {
        const p = Packet.parse(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        finish(p.header.id === id ? p : new DnsNoReplyError(`${label(server)}: TCP reply with another id`));
      } catch (err) {
        finish(new DnsNoReplyError(`${label(server)}: TCP reply does not parse (${(err as Error).message})`));
      }
    });
    sock.on('error', (err) => finish(new DnsNoReplyError(`${label(server)}: ${err.message}`)));
    sock.on('close', () => finish(new DnsNoReplyError(`${label(server)}: TCP connection closed before a reply`)));
  });
}

const label = (s: DnsServer): string => (net.isIPv6(s.host) ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`);

/** A query function over `servers`, asked in order until one replies. */
export function createDnssecQuery(servers: readonly DnsServer[], timeoutMs: number): DnssecQuery {
  return async (name, type) => {
    const failures: string[] = [];
    for (const server of servers) {
      const id = Packet.uuid() & 0xffff;
      const query = encodeQuery(id, name, type);
      try {
        const udp = await askUdp(server, query, id, timeoutMs);
        const p = udp === 'truncated' ? await askTcp(server, query, id, timeoutMs) : udp;
        return toReply(p, label(server));
      } catch (err) {
        failures.push(err instanceof Error ? err.message : String(err));
      }
    }
    throw new DnsNoReplyError(failures.join('; ') || 'no DNS server configured');
  };
}
