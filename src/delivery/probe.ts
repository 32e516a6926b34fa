/**
 * delivery/probe — one recipient verification probe on an open connection
 * (Postfix's verify(8) probe, without a queue file): `MAIL FROM:<>`, then
 * `RCPT TO:<address>`, and nothing more — never DATA. The caller QUITs.
 *
 * What it returns: the remote's reply to RCPT TO when there was one (any
 * code: what it means is inbound/verify-policy's call), or the trouble that
 * kept the probe from getting one — MAIL FROM refused (4xx/5xx), an address
 * the server cannot take without SMTPUTF8, or the connection lost (421,
 * timeout, reset: `connectionLevel`, which the destination's backoff is
 * charged with, as for a delivery).
 *
 * It does not pick hosts, connect, or decide what a reply means; it writes
 * nothing to the queue.
 */
import type { LastReply } from '../queue/model.js';
import { lostReply, toLastReply, type SmtpConnection } from './connection.js';

export type ProbeReport =
  | { readonly kind: 'answered'; readonly reply: LastReply }
  | { readonly kind: 'trouble'; readonly reply: LastReply; readonly connectionLevel: boolean };

const ASCII = /^[\x00-\x7f]*$/;
/** Nothing that could end a command line or start another: the session's parser never lets one through, this says so again. */
const LINE_SAFE = /^[^\r\n\0]+$/;

export async function runProbe(conn: SmtpConnection, address: string): Promise<ProbeReport> {
  const host = conn.label;
  if (!LINE_SAFE.test(address)) {
    return { kind: 'trouble', reply: { code: 553, enhanced: '5.1.3', text: 'address not fit for a command line', host, command: 'RCPT TO', ours: true }, connectionLevel: false };
  }
  const utf8 = !ASCII.test(address);
  if (utf8 && !conn.caps.smtputf8) {
    return { kind: 'trouble', reply: { code: 553, enhanced: '5.6.7', text: 'address needs SMTPUTF8 but the server does not offer it', host, command: 'EHLO', ours: true }, connectionLevel: false };
  }
  conn.transactions++;
  conn.state = 'needs-rset';
  const step = async (line: string, command: string): Promise<{ reply: LastReply } | ProbeReport> => {
    const lost = await conn.write(`${line}\r\n`);
    const r = lost ?? (await conn.read(conn.timeouts.command, command));
    if ('lost' in r) return { kind: 'trouble', reply: lostReply(r, command, host), connectionLevel: true };
    const reply = toLastReply(r.reply, command, host);
    // 421: the server is closing the connection (spec/outbound-replies.md), whatever it was asked.
    if (r.reply.code === 421) return { kind: 'trouble', reply, connectionLevel: true };
    return { reply };
  };
  const mail = await step(`MAIL FROM:<>${utf8 ? ' SMTPUTF8' : ''}`, 'MAIL FROM');
  if ('kind' in mail) return mail;
  if (mail.reply.code < 200 || mail.reply.code >= 300) return { kind: 'trouble', reply: mail.reply, connectionLevel: false };
  const rcpt = await step(`RCPT TO:<${address}>`, 'RCPT TO');
  if ('kind' in rcpt) return rcpt;
  return { kind: 'answered', reply: rcpt.reply };
}
