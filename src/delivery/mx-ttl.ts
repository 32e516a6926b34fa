/**
 * delivery/mx-ttl — the TTL of a domain's MX records, which node:dns does not
 * report (`resolveMx` gives exchanges and preferences only; `resolveAny`
 * gives TTLs for A/AAAA alone). The scheduler remembers a domain's MX host
 * set (its destination key) for this long, capped by
 * `delivery.destination_cache_ttl`.
 *
 * One raw MX question (dns2's UDP client, which retries over TCP when the
 * answer is truncated) to the configured `[dns] servers` in order, or to the
 * system's resolvers when none are configured; the first server that answers
 * decides. The answer is the smallest TTL among the MX records (RFC 2181
 * §5.2: an RRset's TTLs should be equal; if not, the smallest is safe), or
 * undefined when no server answers, the answer has no MX record, or the
 * records themselves come from node's resolver (this question only measures
 * time, it never decides where mail goes).
 *
 * What it does not do: follow CNAMEs, validate DNSSEC, cache.
 */
import { Resolver } from 'node:dns/promises';
import { isIPv6 } from 'node:net';
import dns2 from 'dns2';

const MX_TYPE = dns2.Packet.TYPE.MX;

/** "127.0.0.1:5353" | "[::1]:5353" | "192.0.2.53" | "::1" → host and port (53 by default). */
export function parseServer(server: string): { host: string; port: number } | undefined {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(server);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2] ? Number(bracketed[2]) : 53 };
  if (isIPv6(server)) return { host: server, port: 53 };
  const hostPort = /^([^:]+)(?::(\d+))?$/.exec(server);
  if (hostPort) return { host: hostPort[1]!, port: hostPort[2] ? Number(hostPort[2]) : 53 };
  return undefined;
}

/** The smallest TTL (seconds) of the MX records in an answer, or undefined without one. */
export function mxTtlOf(answers: readonly { type: number; ttl: number }[]): number | undefined {
  const ttls = answers.filter((a) => a.type === MX_TYPE).map((a) => a.ttl);
  return ttls.length > 0 ? Math.min(...ttls) : undefined;
}

/** A function asking a domain's MX TTL (seconds) of the given servers (empty → the system's). */
export function mxTtlQuery(servers: readonly string[], timeoutMs: number): (domain: string) => Promise<number | undefined> {
  const list = (servers.length > 0 ? servers : new Resolver().getServers())
    .map(parseServer).filter((s): s is { host: string; port: number } => s !== undefined);
  const clients = list.map((s) => dns2.UDPClient({ dns: s.host, port: s.port, timeout: timeoutMs, socketType: isIPv6(s.host) ? 'udp6' : 'udp4' }));
  return async (domain) => {
    for (const ask of clients) {
      try {
        const response = await ask(domain, 'MX');
        return mxTtlOf(response.answers);
      } catch {
        // this server did not answer in time: the next one may
      }
    }
    return undefined;
  };
}
