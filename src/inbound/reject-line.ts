/**
 * inbound/reject-line — the one log line every refusal of the SMTP server
 * writes (connection, MAIL, RCPT, end of data, AUTH), so every reject path
 * looks alike and a postmaster can `grep 'reject:'` as with Postfix:
 *
 *   NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 550 5.1.1 <x@example.org>: Recipient
 *   address rejected: User unknown; from=<a@example.net> to=<x@example.org> proto=ESMTP helo=<mail.example.net>
 *
 * The same facts go in fields named like the accepted and delivery lines
 * (`ip`, `helo`, `from`, `to`, `proto`, `dsn`, `reply`), plus `event: "reject"`,
 * `stage` (the command refused) and `reason` (the metrics label). Pure: it
 * builds the line, the session writes it. Does not decide whether to refuse.
 */

/** What is known of the client when the refusal is made. */
export interface RejectClient {
  readonly ip: string;
  /** The client's verified reverse DNS name; "unknown" when not looked up (Halcyon does not look it up today). */
  readonly rdns?: string;
  readonly helo?: string;
  /** Envelope sender once MAIL was accepted ("" for the null sender); absent before. */
  readonly from?: string;
  readonly proto?: string;
  /** The AUTH user, when the client authenticated. */
  readonly user?: string;
}

export interface RejectReply {
  readonly code: number;
  readonly enhanced?: string;
  readonly text: string;
}

export interface RejectLine {
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

/** Control bytes a client sent (ESC, NUL …) never reach a terminal or a pretty log line verbatim. */
const clean = (s: string): string => s.replace(/[\x00-\x1f\x7f]/g, '?');

/** "<a@b>" or "a@b" → "a@b": `to` is an address, as in the delivery lines. */
export function bareAddress(path: string): string {
  const t = path.trim();
  return t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1) : t;
}

/**
 * The reject line. `stage` is the command refused ("CONNECT", "MAIL", "RCPT", "DATA", "END-OF-DATA", "AUTH" …),
 * `reason` the short label /metrics counts it under, `to` the recipient the refusal is about (RCPT; the first one at
 * end of data), `extra` any reason-specific fields (the DNSBL zone …).
 */
export function rejectLine(stage: string, reason: string, client: RejectClient, reply: RejectReply, to?: string, extra: Record<string, unknown> = {}): RejectLine {
  const host = `${client.rdns ?? 'unknown'}[${client.ip}]`;
  const replyText = `${reply.code}${reply.enhanced ? ` ${reply.enhanced}` : ''} ${reply.text}`;
  const parts = [
    client.from !== undefined ? `from=<${clean(client.from)}>` : undefined,
    to !== undefined ? `to=<${clean(bareAddress(to))}>` : undefined,
    client.proto ? `proto=${client.proto}` : undefined,
    client.helo ? `helo=<${clean(client.helo)}>` : undefined,
    client.user ? `sasl_username=${clean(client.user)}` : undefined,
  ].filter((p): p is string => p !== undefined);
  const msg = `NOQUEUE: reject: ${stage} from ${host}: ${clean(replyText)}${parts.length ? `; ${parts.join(' ')}` : ''}`;
  const fields: Record<string, unknown> = {
    event: 'reject', stage, reason, client: host, ip: client.ip, helo: client.helo || undefined,
    from: client.from, to: to === undefined ? undefined : bareAddress(to), proto: client.proto || undefined, user: client.user,
    code: reply.code, dsn: reply.enhanced, reply: replyText, ...extra,
  };
  return { fields, msg };
}
