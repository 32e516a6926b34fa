/**
 * inbound/admission — who may hold one more concurrent SMTP connection: the
 * per-client-IP limit is checked first, then the server-wide one, so one
 * address (or a few) is refused long before it can fill the server and shut
 * everyone else out (Postfix's anvil: smtpd_client_connection_count_limit
 * before the process limit).
 *
 * Counts connections that were admitted; a refused connection is never
 * counted. Does not close or time anything (inbound/server does) and knows
 * nothing of per-minute RATES (a separate module, issue 13).
 */
import { ERRORS } from '../errors.js';

export interface AdmissionLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
}

export type Admission =
  | { readonly ok: true; readonly ip: string }
  | { readonly ok: false; readonly ip: string; readonly reason: 'draining' | 'per-ip' | 'server'; readonly enhanced: string; readonly text: string };

/** "::ffff:192.0.2.1" and "192.0.2.1" are one client. */
export const clientKey = (ip: string): string => (ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip);

export class ConnectionAdmission {
  private readonly perIp = new Map<string, number>();
  private total = 0;

  /** Limits are read on every call, so a reload applies to the next connection. */
  constructor(private readonly limits: AdmissionLimits) {}

  get count(): number {
    return this.total;
  }

  connectionsFrom(ip: string): number {
    return this.perIp.get(clientKey(ip)) ?? 0;
  }

  /** Admits (and counts) one connection from `ip`, or says why not. */
  admit(remoteIp: string, draining: boolean): Admission {
    const ip = clientKey(remoteIp);
    if (draining) return { ok: false, ip, reason: 'draining', enhanced: ERRORS.HAL_ERR_SHUTTING_DOWN.enhanced, text: ERRORS.HAL_ERR_SHUTTING_DOWN.text };
    const mine = this.perIp.get(ip) ?? 0;
    if (mine >= this.limits.maxConnectionsPerIp) {
      return { ok: false, ip, reason: 'per-ip', enhanced: ERRORS.HAL_ERR_TOO_MANY_FROM_IP.enhanced, text: ERRORS.HAL_ERR_TOO_MANY_FROM_IP.text };
    }
    if (this.total >= this.limits.maxConnections) {
      return { ok: false, ip, reason: 'server', enhanced: ERRORS.HAL_ERR_TOO_MANY_CONNECTIONS.enhanced, text: ERRORS.HAL_ERR_TOO_MANY_CONNECTIONS.text };
    }
    this.perIp.set(ip, mine + 1);
    this.total++;
    return { ok: true, ip };
  }

  /** One admitted connection from `ip` has closed. */
  release(remoteIp: string): void {
    const ip = clientKey(remoteIp);
    const n = (this.perIp.get(ip) ?? 0) - 1;
    if (n <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, n);
    if (this.total > 0) this.total--;
  }
}
