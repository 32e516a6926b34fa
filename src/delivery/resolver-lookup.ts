/**
 * delivery/resolver-lookup — node's `lookup` function (for https and tls
 * connections) answered by Halcyon's configured resolver, never the operating
 * system's: names that only `[dns] servers` know (private deployments,
 * tests) resolve, and a name the configured resolver cannot find does not
 * quietly resolve elsewhere. A, then AAAA; an address is used as is.
 *
 * Used by the MTA-STS policy fetch and the TLS-RPT report POST. Does not
 * cache (the resolver does) or decide anything about the answer.
 */
import net, { type LookupFunction } from 'node:net';

/** DNS as mailauth wants it: name and type → records. */
export type AuthResolverFn = (name: string, rrtype: string) => Promise<string[][] | string[]>;

export function resolverLookup(resolver: AuthResolverFn, what: string): LookupFunction {
  const addressesOf = async (name: string): Promise<{ address: string; family: number }[]> => {
    const ask = async (rrtype: 'A' | 'AAAA'): Promise<string[]> => {
      try {
        return (await resolver(name, rrtype)).flat().map(String);
      } catch {
        return [];
      }
    };
    const [v4, v6] = await Promise.all([ask('A'), ask('AAAA')]);
    return [...v4.map((address) => ({ address, family: 4 })), ...v6.map((address) => ({ address, family: 6 }))];
  };
  return (hostname, options, callback) => {
    const all = (options as { all?: boolean }).all === true;
    const family = net.isIP(hostname);
    const found: Promise<{ address: string; family: number }[]> = family !== 0
      ? Promise.resolve([{ address: hostname, family }])
      : addressesOf(hostname);
    found.then((list) => {
      if (list.length === 0) {
        callback(Object.assign(new Error(`${what}: no address for ${hostname}`), { code: 'ENOTFOUND' }), '', 4);
      } else if (all) {
        (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, list);
      } else {
        callback(null, list[0]!.address, list[0]!.family);
      }
    }, (err: unknown) => callback(err as NodeJS.ErrnoException, '', 4));
  };
}
