/**
 * test/support/dns-server — a real DNS server for tests, on 127.0.0.1 UDP
 * (and TCP on the same port when that port is free), serving a zone written
 * as a plain object:
 *
 * ```ts
 * const dns = await startDnsServer({
 *   'example.test': { MX: [{ preference: 10, exchange: 'mx1.example.test' }], A: ['127.0.0.1'], AAAA: ['::1'] },
 *   'nx.test': 'NXDOMAIN', 'broken.test': 'SERVFAIL', 'slow.test': 'TIMEOUT',
 * });
 * dns.address; // "127.0.0.1:PORT", for Resolver.setServers / config dns.servers
 * ```
 *
 * Semantics: names are matched case-insensitively, trailing dot ignored.
 * Unknown name → NXDOMAIN. Known name without a record of the asked type →
 * NOERROR with no answers (node reports ENODATA). "TIMEOUT" → no reply.
 * It is authoritative for everything and does no recursion, wildcards or
 * CNAME chasing; it is not a general DNS server.
 */
import dns2 from 'dns2';

const { Packet } = dns2;

export interface ZoneRecords {
  MX?: { preference: number; exchange: string }[];
  A?: string[];
  AAAA?: string[];
  TXT?: string[];
  CNAME?: string;
  /** TTL in seconds of every record of this name (default 60). */
  TTL?: number;
}
export type ZoneEntry = ZoneRecords | 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED' | 'TIMEOUT';
export type Zone = Record<string, ZoneEntry>;

export interface DnsQuery {
  readonly name: string;
  readonly type: string;
  readonly transport: 'udp' | 'tcp';
}

export interface TestDnsServer {
  /** "127.0.0.1:PORT" */
  readonly address: string;
  readonly port: number;
  /** Every question received, in order. */
  readonly queries: DnsQuery[];
  /** Whether TCP is also served on the same port. */
  readonly tcp: boolean;
  setZone(zone: Zone): void;
  close(): Promise<void>;
}

/** RFC 1035 §4.1.1 RCODEs (dns2 has Packet.RCODE at runtime but not in its types). */
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const TYPE_NAMES = new Map<number, string>(Object.entries(Packet.TYPE).map(([k, v]) => [v as number, k]));
const norm = (name: string) => name.replace(/\.$/, '').toLowerCase();

function answer(request: dns2.Packet, zone: Map<string, ZoneEntry>): dns2.Packet | undefined {
  const response = Packet.createResponseFromRequest(request);
  response.header.aa = 1;
  const q = request.questions[0];
  if (!q) {
    response.header.rcode = RCODE.FORMERR;
    return response;
  }
  const entry = zone.get(norm(q.name));
  if (entry === undefined || entry === 'NXDOMAIN') {
    response.header.rcode = RCODE.NXDOMAIN;
    return response;
  }
  if (entry === 'TIMEOUT') return undefined;
  if (entry === 'SERVFAIL' || entry === 'REFUSED') {
    response.header.rcode = entry === 'SERVFAIL' ? RCODE.SERVFAIL : RCODE.REFUSED;
    return response;
  }
  const base = { name: q.name, class: Packet.CLASS.IN, ttl: entry.TTL ?? 60 };
  const push = (r: Record<string, unknown>) => response.answers.push({ ...base, ...r } as unknown as dns2.Packet.Resource);
  if (entry.CNAME !== undefined && q.type !== Packet.TYPE.CNAME) {
    push({ type: Packet.TYPE.CNAME, domain: entry.CNAME });
    return response;
  }
  switch (q.type) {
    case Packet.TYPE.MX:
      for (const mx of entry.MX ?? []) push({ type: Packet.TYPE.MX, priority: mx.preference, exchange: mx.exchange });
      break;
    case Packet.TYPE.A:
      for (const address of entry.A ?? []) push({ type: Packet.TYPE.A, address });
      break;
    case Packet.TYPE.AAAA:
      for (const address of entry.AAAA ?? []) push({ type: Packet.TYPE.AAAA, address });
      break;
    case Packet.TYPE.TXT:
      // A record longer than 255 octets (a DKIM key) goes out as several character-strings, as a zone file would split it.
      for (const data of entry.TXT ?? []) push({ type: Packet.TYPE.TXT, data: data.match(/[^]{1,255}/g) ?? [''] });
      break;
    case Packet.TYPE.CNAME:
      if (entry.CNAME !== undefined) push({ type: Packet.TYPE.CNAME, domain: entry.CNAME });
      break;
    default:
      break; // NOERROR, no answers: the name exists, the type does not
  }
  return response;
}

export async function startDnsServer(initial: Zone = {}): Promise<TestDnsServer> {
  let zone = new Map<string, ZoneEntry>();
  const setZone = (z: Zone) => {
    zone = new Map(Object.entries(z).map(([k, v]) => [norm(k), v]));
  };
  setZone(initial);
  const queries: DnsQuery[] = [];

  const handler = (transport: 'udp' | 'tcp') => (request: dns2.Packet, send: (r: dns2.Packet) => unknown) => {
    const q = request.questions[0];
    if (q) queries.push({ name: norm(q.name), type: TYPE_NAMES.get(q.type) ?? String(q.type), transport });
    const response = answer(request, zone);
    if (response) void Promise.resolve(send(response)).catch(() => undefined);
  };

  const udp = dns2.createServer({ udp: true, handle: handler('udp') });
  udp.on('requestError', () => undefined);
  const addrs = await udp.listen({ udp: { port: 0, address: '127.0.0.1' } });
  const port = addrs.udp!.port;

  // TCP on the same port only matters for truncated answers; if the port is
  // taken for TCP, the server simply runs UDP-only.
  const tcpServer = dns2.createTCPServer(handler('tcp'));
  tcpServer.on('requestError', () => undefined);
  const tcp = await new Promise<boolean>((resolve) => {
    tcpServer.once('error', () => resolve(false));
    tcpServer.listen(port, '127.0.0.1', () => resolve(true));
  });

  return {
    address: `127.0.0.1:${port}`,
    port,
    queries,
    tcp,
    setZone,
    async close() {
      await udp.close();
      if (tcp) await new Promise<void>((resolve) => tcpServer.close(() => resolve()));
    },
  };
}
