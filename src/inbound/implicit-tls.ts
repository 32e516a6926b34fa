/**
 * inbound/implicit-tls — the TLS handshake of an implicit-TLS listener
 * (submission on port 465, RFC 8314 §3.3): TLS from the first byte, before
 * any SMTP. The server calls it after admitting a connection and starts the
 * session on the TLS socket it yields, telling the session it is already
 * secure (no STARTTLS offered, AUTH allowed).
 *
 * A client that does not complete the handshake within the timeout, or fails
 * it, is closed without a word (there is no SMTP channel to say 421 on).
 * Does not speak SMTP, choose certificates (inbound/tls-cert does) or count
 * connections (inbound/server does).
 */
import type net from 'node:net';
import tls from 'node:tls';

export type Handshake =
  | { readonly ok: true; readonly socket: tls.TLSSocket; readonly description: string }
  | { readonly ok: false; readonly reason: string };

/** Wraps an accepted socket as the TLS server side; resolves once the handshake finished or failed. */
export function implicitTlsHandshake(raw: net.Socket, context: tls.SecureContext, timeoutMs: number): Promise<Handshake> {
  return new Promise((resolve) => {
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
    const timer = setTimeout(() => finish({ ok: false, reason: `no TLS handshake within ${timeoutMs}ms` }), timeoutMs);
    const finish = (h: Handshake): void => {
      clearTimeout(timer);
      secure.removeListener('secure', onSecure);
      secure.removeListener('error', onError);
      if (!h.ok) {
        secure.on('error', () => { /* already failed */ });
        raw.destroy();
      }
      resolve(h);
    };
    const onSecure = (): void => {
      const cipher = secure.getCipher();
      finish({ ok: true, socket: secure, description: `${secure.getProtocol() ?? 'TLS'} with cipher ${cipher.standardName ?? cipher.name}` });
    };
    const onError = (err: Error): void => finish({ ok: false, reason: err.message });
    secure.once('secure', onSecure);
    secure.once('error', onError);
  });
}
