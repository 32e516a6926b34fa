/**
 * delivery/mta-sts — MTA-STS (RFC 8461) for MX delivery: a domain's policy
 * (the `_mta-sts` TXT record names its id; the policy itself is
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt), kept in memory for its
 * max_age. (The TLS-RPT session counts are delivery/tls-sessions'.)
 *
 * Policy fetching rules (§3.3, §5.1): a new TXT id, or a cached policy past
 * max_age, fetches again; a failed lookup or fetch keeps using a cached
 * policy; with none cached the domain is treated as having no policy (and
 * asked again after five minutes). The HTTPS fetch verifies the certificate
 * against the system roots plus `[delivery] tls_ca_file`, follows no
 * redirects (§3.3) and reads at most 64 KiB. `[delivery] mta_sts_hosts` maps
 * a policy host to "host:port" — for tests and private deployments whose
 * policy host is not where DNS says. The policy host's name (or the mapped
 * one) is looked up through the same resolver as the TXT record — the
 * configured `[dns] servers` — never the operating system's: an enforce
 * domain whose policy cannot be fetched would otherwise get unverified TLS.
 * A TXT record that names a policy whose fetch then fails is reported
 * through `onFetchFailed` (logged and counted by the app).
 *
 * mailauth 7.1 does the record and policy parsing and the MX name matching
 * (`resolvePolicy`, `parsePolicy`, `validateMx`); its own fetch cannot take a
 * CA or a port, so the HTTPS GET is here. What the transport does with a
 * policy is `stsPlan` (pure); the transport applies it.
 */
import https from 'node:https';
import tls from 'node:tls';
import { parsePolicy, resolvePolicy, validateMx } from 'mailauth/lib/mta-sts.js';
import type { NextHop } from './resolve.js';
import { resolverLookup } from './resolver-lookup.js';

export type StsMode = 'enforce' | 'testing' | 'none';

export interface StsPolicy {
  readonly id: string;
  readonly mode: StsMode;
  readonly mx: readonly string[];
  readonly maxAgeS: number;
}

/** What an MX delivery does under a policy. */
export type StsPlan =
  | { readonly kind: 'none' }
  /** enforce: only these hops, TLS with a verified certificate for the MX name. */
  | { readonly kind: 'enforce'; readonly hops: readonly NextHop[]; readonly policy: StsPolicy }
  /** testing: deliver as usual; `mismatched` MX names (and TLS failures) are logged. */
  | { readonly kind: 'testing'; readonly mismatched: readonly string[]; readonly policy: StsPolicy }
  /** enforce, and no MX host matches the policy: defer. */
  | { readonly kind: 'no-match'; readonly text: string; readonly policy: StsPolicy };

/** Pure: the plan for `hops` (the domain's MX hosts, resolved) under `policy`. */
export function stsPlan(policy: StsPolicy | undefined, hops: readonly NextHop[], domain: string): StsPlan {
  if (!policy || policy.mode === 'none') return { kind: 'none' };
  const asMailauth = { mode: policy.mode, mx: [...policy.mx] };
  const ok = (h: NextHop) => validateMx(h.host, asMailauth).valid;
  if (policy.mode === 'testing') return { kind: 'testing', mismatched: [...new Set(hops.filter((h) => !ok(h)).map((h) => h.host))], policy };
  const allowed = hops.filter(ok);
  if (allowed.length === 0) {
    const names = [...new Set(hops.map((h) => h.host))].join(', ') || 'none';
    return { kind: 'no-match', policy, text: `MTA-STS policy of ${domain} (mx: ${policy.mx.join(', ')}) matches no MX host (${names})` };
  }
  return { kind: 'enforce', hops: allowed, policy };
}

export interface MtaStsDeps {
  /** DNS as mailauth wants it (the TXT lookup of `_mta-sts`). */
  readonly resolver: (name: string, rrtype: string) => Promise<string[][] | string[]>;
  /** Extra trusted CA certificates (PEM), besides the system roots. */
  readonly ca?: string;
  /** policy host → "host:port" (tests, private deployments). */
  readonly hosts: () => Readonly<Record<string, string>>;
  readonly clock?: () => number;
  readonly timeoutMs?: number;
  /** The TXT record names a policy (`id`) but it could not be fetched or parsed. */
  readonly onFetchFailed?: (domain: string, reason: string) => void;
}

interface Cached {
  readonly policy: StsPolicy | undefined;
  /** Until when the entry stands without asking DNS again. */
  readonly checkAfter: number;
  /** Until when the policy itself is valid (max_age). */
  readonly validUntil: number;
}

const RECHECK_MS = 5 * 60_000;
const MAX_POLICY_BYTES = 64 * 1024;

export class MtaSts {
  private readonly cache = new Map<string, Cached>();
  private readonly clock: () => number;
  private readonly ca: string[] | undefined;

  constructor(private readonly d: MtaStsDeps) {
    this.clock = d.clock ?? Date.now;
    this.ca = d.ca ? [...tls.rootCertificates, d.ca] : undefined;
  }

  /** The policy in force for `domain`, or undefined when it has none (or none can be had). */
  async policyFor(domain: string): Promise<StsPolicy | undefined> {
    const now = this.clock();
    const cached = this.cache.get(domain);
    if (cached && cached.checkAfter > now) return cached.policy;
    const stillValid = cached?.policy && cached.validUntil > now ? cached.policy : undefined;
    let id: string | false;
    try {
      id = await resolvePolicy(domain, { resolver: this.d.resolver });
    } catch {
      this.remember(domain, stillValid, now + RECHECK_MS, cached?.validUntil ?? 0);
      return stillValid;
    }
    if (id === false) {
      // §3.3: a removed TXT record with a valid cached policy keeps the policy until it expires.
      this.remember(domain, stillValid, now + RECHECK_MS, cached?.validUntil ?? 0);
      return stillValid;
    }
    if (stillValid && stillValid.id === id) {
      this.remember(domain, stillValid, now + RECHECK_MS, cached!.validUntil);
      return stillValid;
    }
    try {
      const text = await this.fetch(domain);
      const p = parsePolicy(text);
      const policy: StsPolicy = { id, mode: p.mode, mx: p.mx ?? [], maxAgeS: p.maxAge ?? 0 };
      const validUntil = now + policy.maxAgeS * 1000;
      this.remember(domain, policy, Math.min(validUntil, now + RECHECK_MS), validUntil);
      return policy;
    } catch (err) {
      this.d.onFetchFailed?.(domain, err instanceof Error ? err.message : String(err));
      this.remember(domain, stillValid, now + RECHECK_MS, cached?.validUntil ?? 0);
      return stillValid;
    }
  }

  private remember(domain: string, policy: StsPolicy | undefined, checkAfter: number, validUntil: number): void {
    this.cache.set(domain, { policy, checkAfter, validUntil });
  }

  private fetch(domain: string): Promise<string> {
    const host = `mta-sts.${domain}`;
    const mapped = this.d.hosts()[host];
    const [connectHost, port] = mapped ? splitHostPort(mapped) : [host, 443];
    return new Promise((resolve, reject) => {
      const req = https.get({
        host: connectHost, port, path: '/.well-known/mta-sts.txt', servername: host, headers: { host },
        ...(this.ca ? { ca: this.ca } : {}), rejectUnauthorized: true, timeout: this.d.timeoutMs ?? 15_000,
        lookup: this.lookup,
      }, (res) => {
        // §3.3: no redirects; only 200 with a policy is a policy.
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`policy fetch: HTTP ${res.statusCode ?? '?'}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_POLICY_BYTES) req.destroy(new Error('policy fetch: policy larger than 64 KiB'));
          else chunks.push(c);
        });
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('policy fetch: timeout')));
      req.on('error', reject);
    });
  }

  /** node's `lookup` for the policy fetch, answered by the configured resolver (delivery/resolver-lookup). */
  private readonly lookup = resolverLookup((name, rrtype) => this.d.resolver(name, rrtype), 'policy fetch');
}

function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i).replace(/^\[|\]$/g, ''), Number(s.slice(i + 1))];
}
