/**
 * inbound/sasl — the server side of the SASL PLAIN (RFC 4616) and LOGIN
 * exchanges of SMTP AUTH (RFC 4954), as a pure state machine: the session
 * feeds it the AUTH command and each client line, and sends what it says.
 *
 * Does not check passwords (inbound/auth) or decide whether AUTH is allowed
 * (the session does: TLS or loopback, not twice).
 */
import { decodeBase64Line, decodePlain, type Credentials } from './auth.js';

export type SaslState = { readonly mechanism: 'PLAIN' } | { readonly mechanism: 'LOGIN'; readonly user?: string };

export type SaslStep =
  /** Send `334 text` and wait for the client's next line. */
  | { readonly kind: 'challenge'; readonly state: SaslState; readonly text: string }
  | { readonly kind: 'done'; readonly credentials: Credentials }
  | { readonly kind: 'error'; readonly code: number; readonly enhanced: string; readonly text: string };

const USERNAME = 'VXNlcm5hbWU6'; // base64 "Username:"
const PASSWORD = 'UGFzc3dvcmQ6'; // base64 "Password:"
const UNDECODABLE: SaslStep = { kind: 'error', code: 501, enhanced: '5.5.2', text: 'Cannot decode response' };

function plain(response: string): SaslStep {
  const credentials = response === '=' ? undefined : decodePlain(response);
  return credentials ? { kind: 'done', credentials } : UNDECODABLE;
}

function login(user: string | undefined, response: string): SaslStep {
  const text = decodeBase64Line(response);
  if (text === undefined) return UNDECODABLE;
  if (user === undefined) return { kind: 'challenge', state: { mechanism: 'LOGIN', user: text }, text: PASSWORD };
  return { kind: 'done', credentials: { user, password: text } };
}

/** `AUTH <mechanism> [initial-response]`. */
export function saslStart(mechanism: string, initial: string | undefined): SaslStep {
  switch (mechanism) {
    case 'PLAIN':
      return initial === undefined ? { kind: 'challenge', state: { mechanism: 'PLAIN' }, text: '' } : plain(initial);
    case 'LOGIN':
      return initial === undefined ? { kind: 'challenge', state: { mechanism: 'LOGIN' }, text: USERNAME } : login(undefined, initial);
    default:
      return { kind: 'error', code: 504, enhanced: '5.5.4', text: 'Unrecognized authentication type' };
  }
}

/** The client's line after a 334. `*` cancels (RFC 4954 §4). */
export function saslContinue(state: SaslState, line: string): SaslStep {
  if (line === '*') return { kind: 'error', code: 501, enhanced: '5.0.0', text: 'Authentication cancelled' };
  return state.mechanism === 'PLAIN' ? plain(line) : login(state.user, line);
}
