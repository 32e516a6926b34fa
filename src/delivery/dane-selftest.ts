/**
 * delivery/dane-selftest — whether DANE may be on: the resolver whose AD bit
 * it would trust must be one the operator chose, and must show, by a test at
 * startup, that it validates. A resolver that does not validate would make
 * every DNSSEC-signed domain look insecure (DANE silently off) or, worse for
 * some implementations, unusable; one that validates only sometimes is found
 * here, once, and DANE stays off with the reason logged.
 *
 * Which resolvers (`trustedResolvers`, pure):
 * | `[dns] servers`      | system resolvers (resolv.conf)  | DANE asks                          |
 * |----------------------|---------------------------------|------------------------------------|
 * | set                  | —                               | those servers                      |
 * | empty                | all loopback (127.0.0.0/8, ::1) | those (a local validating resolver)|
 * | empty                | any other                       | nobody: DANE off (an AD bit that crossed a network is not trusted, RFC 6698 §4.1) |
 *
 * The test (`judgeSelfTest`, pure), asking an A question of each name:
 * | `selftest_signed` reply       | `selftest_bogus` reply | result                                      |
 * |-------------------------------|------------------------|---------------------------------------------|
 * | NOERROR/NXDOMAIN with AD      | SERVFAIL               | pass: DANE on                               |
 * | without AD                    | —                      | fail: the resolver does not validate        |
 * | SERVFAIL / no reply           | —                      | fail: the signed name cannot be resolved    |
 * | AD                            | an answer (NOERROR…)   | fail: the resolver accepts bogus data       |
 * | AD                            | no reply               | fail: cannot tell                           |
 *
 * What it does not do: decide anything per delivery (delivery/dane) or retry
 * the test later (a restart does; the reason says what to fix).
 */
import { isIP } from 'node:net';
import { RCODE, type DnsReply, type DnssecQuery, type DnsServer } from './dnssec-query.js';
import { parseServer } from './mx-ttl.js';

export type Trusted =
  | { readonly ok: true; readonly servers: readonly DnsServer[] }
  | { readonly ok: false; readonly reason: string };

const isLoopback = (host: string): boolean => host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));

/** Pure: the resolvers DANE may trust (the first table above). */
export function trustedResolvers(configured: readonly string[], system: readonly string[]): Trusted {
  const parse = (list: readonly string[]) => list.map(parseServer).filter((s): s is DnsServer => s !== undefined);
  if (configured.length > 0) return { ok: true, servers: parse(configured) };
  const sys = parse(system);
  if (sys.length === 0) return { ok: false, reason: 'no resolver: [dns] servers is empty and the system has none' };
  const remote = sys.filter((s) => !isLoopback(s.host));
  if (remote.length > 0) {
    return { ok: false, reason: `[dns] servers is empty and the system resolver ${remote.map((s) => s.host).join(', ')} is not on this host: its AD bit is not trusted; set [dns] servers to a validating resolver (e.g. a local unbound)` };
  }
  return { ok: true, servers: sys };
}

export type SelfTestResult = { readonly ok: true; readonly detail: string } | { readonly ok: false; readonly reason: string };

/** A reply, or why there is none. */
export type Asked = { readonly reply: DnsReply } | { readonly error: string };

/** Pure: the verdict from the two answers (the second table above). */
export function judgeSelfTest(signed: string, signedAnswer: Asked, bogus: string, bogusAnswer: Asked): SelfTestResult {
  if ('error' in signedAnswer) return { ok: false, reason: `the signed name ${signed} got no answer (${signedAnswer.error})` };
  const s = signedAnswer.reply;
  if (s.rcode !== RCODE.NOERROR && s.rcode !== RCODE.NXDOMAIN) {
    return { ok: false, reason: `the signed name ${signed} failed with rcode ${s.rcode}${s.rcode === RCODE.SERVFAIL ? ' (SERVFAIL)' : ''} at ${s.server}` };
  }
  if (!s.ad) return { ok: false, reason: `${s.server} does not validate DNSSEC: its answer for the signed name ${signed} has no AD bit` };
  if ('error' in bogusAnswer) return { ok: false, reason: `the bogus name ${bogus} got no answer (${bogusAnswer.error}); cannot tell whether bogus data is refused` };
  const b = bogusAnswer.reply;
  if (b.rcode !== RCODE.SERVFAIL) {
    return { ok: false, reason: `${b.server} answered the bogus name ${bogus} (rcode ${b.rcode}${b.ad ? ', AD set' : ''}) instead of refusing it with SERVFAIL: it does not validate` };
  }
  return { ok: true, detail: `${s.server} validates: ${signed} secure, ${bogus} refused` };
}

/** Asks both names and judges. Never throws. */
export async function runSelfTest(query: DnssecQuery, signed: string, bogus: string): Promise<SelfTestResult> {
  const ask = async (name: string): Promise<Asked> => {
    try {
      return { reply: await query(name, 'A') };
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) };
    }
  };
  const [s, b] = await Promise.all([ask(signed), ask(bogus)]);
  return judgeSelfTest(signed, s, bogus, b);
}

export interface StartDaneOptions {
  /** `[delivery] dane`. */
  readonly mode: 'auto' | 'off';
  /** `[dns] servers` and `[dns] timeout` in ms. */
  readonly servers: readonly string[];
  readonly timeoutMs: number;
  readonly signed: string;
  readonly bogus: string;
  /** The operating system's resolvers (node:dns getServers()). */
  readonly system: readonly string[];
  /** Told once, when the self-test has spoken: on (with the detail) or off (with the reason). */
  readonly report: (r: { readonly on: true; readonly detail: string } | { readonly on: false; readonly reason: string }) => void;
  /** Builds the query function for the trusted servers (delivery/dnssec-query; tests may pass another). */
  readonly makeQuery: (servers: readonly DnsServer[], timeoutMs: number) => DnssecQuery;
}

/**
 * The self-test, run once: `verdict()` is what deliveries await (the DNSSEC
 * query function when DANE is on, undefined when it is off) and starts the
 * test if nothing has yet; the server calls it at start, so the verdict is
 * logged before the first delivery needs it.
 */
export function daneSelfTest(o: StartDaneOptions): () => Promise<DnssecQuery | undefined> {
  let decided: Promise<DnssecQuery | undefined> | undefined;
  const decide = async (): Promise<DnssecQuery | undefined> => {
    if (o.mode === 'off') return undefined;
    const trusted = trustedResolvers(o.servers, o.system);
    if (!trusted.ok) {
      o.report({ on: false, reason: trusted.reason });
      return undefined;
    }
    const query = o.makeQuery(trusted.servers, o.timeoutMs);
    const result = await runSelfTest(query, o.signed, o.bogus);
    o.report(result.ok ? { on: true, detail: result.detail } : { on: false, reason: result.reason });
    return result.ok ? query : undefined;
  };
  return () => (decided ??= decide());
}
