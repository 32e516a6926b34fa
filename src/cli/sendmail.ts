/**
 * cli/sendmail — `halcyon sendmail` (also `halcyon` invoked as `sendmail`):
 * the command-line interface cron, PHP mail() and mailx expect.
 *
 *   sendmail [-t] [-i|-oi] [-f sender|-r sender] [-F fullname] [-bm|-bs|-bi|-I] [-C config] [-oX…] [--] [recipient…]
 *
 * The message comes from stdin. Without -i a line holding a single "." ends
 * it. -t adds the To/Cc/Bcc addresses of the headers to the argument
 * recipients (as Postfix does) and removes Bcc. A From header is added when
 * missing (with -F's full name); a missing Date and Message-ID are added by
 * intake/, as for every local submission. The message is submitted through the running server's admin API, or queued straight into
 * data_dir when the server is stopped (delivered at its next start). -bs
 * speaks SMTP on stdin/stdout by relaying bytes to the local SMTP listener;
 * -bi (and -I) is newaliases (cli/newaliases-cmd), as in Sendmail and Postfix.
 * Unknown -o options and -v, -B, -N, -R, -V, -X, -L are accepted and ignored,
 * as real sendmail does. Exit codes follow sysexits.h.
 */
import net from 'node:net';
import { userInfo } from 'node:os';
import { ConfigError, configFileFrom, loadConfig } from '../config/load.js';
import { AdminError } from '../http/admin-api.js';
import { splitHostPort } from '../config/units.js';
import { openBackend } from './admin-client.js';

export const EX_USAGE = 64;
export const EX_DATAERR = 65;
export const EX_NOUSER = 67;
export const EX_UNAVAILABLE = 69;
export const EX_TEMPFAIL = 75;
export const EX_CONFIG = 78;

export interface SendmailArgs {
  readonly extractRecipients: boolean; // -t
  readonly ignoreDots: boolean; // -i, -oi
  readonly sender?: string; // -f, -r
  readonly fullName?: string; // -F
  readonly mode: 'deliver' | 'smtp' | 'newaliases' | 'help'; // -bm (default), -bs, -bi or -I, --help
  readonly config?: string; // -C
  readonly recipients: string[];
  readonly ignored: string[];
}

/** Options that take an argument (attached "-fme" or separate "-f me") and that we ignore. */
const IGNORED_WITH_ARG = new Set(['B', 'N', 'R', 'V', 'X', 'L', 'O', 'h', 'p', 'q']);

export class SendmailUsageError extends Error {
  readonly code = 'HAL_ERR_USAGE';
}

export function parseSendmailArgs(argv: readonly string[]): SendmailArgs {
  let extractRecipients = false;
  let ignoreDots = false;
  let sender: string | undefined;
  let fullName: string | undefined;
  let mode: SendmailArgs['mode'] = 'deliver';
  let config: string | undefined;
  const recipients: string[] = [];
  const ignored: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--') {
      recipients.push(...argv.slice(i + 1));
      break;
    }
    if (a === '--help' || a === '-h') { mode = 'help'; continue; }
    if (!a.startsWith('-') || a === '-') {
      recipients.push(a);
      continue;
    }
    const flag = a[1] ?? '';
    const attached = a.slice(2);
    const value = (): string => {
      if (attached !== '') return attached;
      const next = argv[++i];
      if (next === undefined) throw new SendmailUsageError(`option -${flag} needs a value`);
      return next;
    };
    switch (flag) {
      case 't': extractRecipients = true; break;
      case 'i': ignoreDots = true; break;
      case 'f': case 'r': sender = value(); break;
      case 'F': fullName = value(); break;
      case 'I': mode = 'newaliases'; break;
      case 'C': config = value(); break;
      case 'v': case 'U': case 'n': case 'm': case 'e': ignored.push(a); break;
      case 'o':
        // -oi is the one -o option with a meaning here; -oem, -odb, -oQ… are accepted and ignored.
        if (attached === 'i') ignoreDots = true;
        else ignored.push(a);
        break;
      case 'b':
        if (attached === 's') mode = 'smtp';
        else if (attached === 'i') mode = 'newaliases';
        else if (attached === 'm' || attached === '') mode = 'deliver';
        else throw new SendmailUsageError(`-b${attached} is not supported (only -bm, -bs and -bi)`);
        break;
      default:
        if (IGNORED_WITH_ARG.has(flag)) { ignored.push(a, attached === '' ? (argv[++i] ?? '') : ''); break; }
        throw new SendmailUsageError(`unknown option ${a}`);
    }
  }
  return { extractRecipients, ignoreDots, sender, fullName, mode, config, recipients, ignored };
}

/** The message as sendmail reads it: without -i, a line "." ends it; LF or CRLF lines both accepted. */
export function readMessage(input: string, ignoreDots: boolean): string {
  if (ignoreDots) return input;
  const lines = input.split(/(?<=\n)/);
  const out: string[] = [];
  for (const line of lines) {
    if (/^\.\r?\n?$/.test(line)) break;
    out.push(line);
  }
  return out.join('');
}

/** Splits an address-list header value into addr-specs ("A <a@x>, b@y, grp: c@z;" → a@x, b@y, c@z). */
export function addressesOf(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote = false;
  let angle = false;
  let paren = 0;
  const flush = () => {
    const angled = /<([^>]*)>/.exec(cur);
    let addr = angled ? (angled[1] ?? '') : cur.replace(/"[^"]*"/g, '').replace(/\([^)]*\)/g, '');
    addr = addr.replace(/^.*:/, '').replace(/;$/, '').trim(); // group "name:" prefix and ";" end
    if (addr.includes('@')) out.push(addr);
    cur = '';
  };
  for (const c of value) {
    if (c === '"' && paren === 0) quote = !quote;
    else if (!quote && c === '(') paren++;
    else if (!quote && c === ')') paren = Math.max(0, paren - 1);
    else if (!quote && paren === 0 && c === '<') angle = true;
    else if (!quote && paren === 0 && c === '>') angle = false;
    if ((c === ',' || c === ';') && !quote && !angle && paren === 0) {
      if (c === ';') cur += c;
      flush();
      continue;
    }
    cur += c;
  }
  flush();
  return out;
}

export interface Prepared {
  readonly sender: string;
  readonly recipients: string[];
  readonly content: string;
}

/**
 * Turns stdin and the flags into what is submitted: recipients (with -t), Bcc removed, From added.
 * Date and Message-ID, when missing, are added by the intake like for every local submission.
 */
export function prepareMessage(raw: string, args: SendmailArgs, env: { user: string; hostname: string }): Prepared {
  // Header fields (with their continuation lines) run up to the first empty line, or the first line that is not a header.
  const lines = raw.replace(/\r\n/g, '\n').split('\n');
  const fields: string[] = [];
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line === '') { i++; break; }
    if (/^[ \t]/.test(line) && fields.length > 0) fields[fields.length - 1] += `\n${line}`;
    else if (/^[\x21-\x39\x3b-\x7e]+:/.test(line)) fields.push(line);
    else break;
  }
  const bodyText = lines.slice(i).join('\n');
  const nameOf = (f: string) => f.slice(0, f.indexOf(':')).trim().toLowerCase();
  const valueOf = (f: string) => f.slice(f.indexOf(':') + 1).replace(/\n[ \t]+/g, ' ').trim();
  const recipients = [...args.recipients.flatMap((r) => r.includes(',') ? addressesOf(r) : [r.trim()]).filter(Boolean)];
  if (args.extractRecipients) {
    for (const f of fields) if (['to', 'cc', 'bcc'].includes(nameOf(f))) recipients.push(...addressesOf(valueOf(f)));
  }
  const kept = fields.filter((f) => nameOf(f) !== 'bcc');
  const has = (n: string) => kept.some((f) => nameOf(f) === n);
  const local = `${env.user}@${env.hostname}`;
  const nullSender = args.sender === '<>' || args.sender === '';
  const sender = nullSender ? local : args.sender ?? local;
  const added: string[] = [];
  if (!has('from')) {
    const name = args.fullName?.replace(/["\\]/g, '\\$&');
    added.push(`From: ${name ? `"${name}" ` : ''}<${sender}>`);
  }
  const seen = new Set<string>();
  const unique = recipients.filter((r) => {
    const k = r.toLowerCase();
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  const content = `${[...kept, ...added].join('\n')}\n\n${bodyText}`;
  return { sender: nullSender ? '' : sender, recipients: unique, content };
}

/**
 * stdin as bytes, one char per byte (latin1): 8-bit mail in any charset goes through header parsing
 * and dot handling untouched, and is submitted as the same bytes (base64). Decoding it as UTF-8
 * would turn every byte that is not UTF-8 into U+FFFD.
 */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('latin1');
}

/** An address taken from the byte-per-char header text, as the UTF-8 it was written in (SMTPUTF8 addresses). */
const utf8Of = (byteText: string): string => Buffer.from(byteText, 'latin1').toString('utf8');

const USAGE = `Usage: halcyon sendmail [-t] [-i|-oi] [-f sender] [-F fullname] [-bm|-bs|-bi] [-C config] [recipient...]
  Reads a message on stdin and queues it with the running Halcyon (or in data_dir when it is stopped).
  -t           add recipients from the To, Cc and Bcc headers (Bcc is removed)
  -i, -oi      a line with a single "." does not end the message
  -f, -r ADDR  envelope sender (default: your user name @ hostname)
  -F NAME      full name for the From header this command adds when there is none
  -bs          speak SMTP on stdin/stdout (relayed to the local SMTP listener)
  -bi, -I      newaliases: the aliases file read again (halcyon newaliases)
  -C FILE      Halcyon config file (or HALCYON_CONFIG)
  Other -o options and -v are accepted and ignored.
`;

/** Runs sendmail with argv (without "node main.js [sendmail]"); resolves with the exit code. */
export async function sendmailMain(argv: readonly string[]): Promise<number> {
  let args: SendmailArgs;
  try {
    args = parseSendmailArgs(argv);
  } catch (err) {
    process.stderr.write(`sendmail: ${(err as Error).message}\n${USAGE}`);
    return EX_USAGE;
  }
  if (args.mode === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.mode === 'newaliases') {
    await (await import('./newaliases-cmd.js')).newaliases({ config: args.config });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  }
  let cfg;
  try {
    cfg = loadConfig(configFileFrom(args.config));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`sendmail: ${err.message}\n`);
    return EX_CONFIG;
  }
  if (args.mode === 'smtp') return smtpProxy(cfg.smtp.listen[0]);
  const raw = readMessage(await readStdin(), args.ignoreDots);
  // Everything that may end up in the message is byte-per-char text like stdin; it is turned back below.
  const bytes = (t: string | undefined) => (t === undefined ? undefined : Buffer.from(t, 'utf8').toString('latin1'));
  const byteArgs = { ...args, sender: bytes(args.sender), fullName: bytes(args.fullName), recipients: args.recipients.map((r) => bytes(r) ?? r) };
  const prepare = (hostname: string) => {
    const p = prepareMessage(raw, byteArgs, { user: userInfo().username, hostname });
    return { ...p, sender: utf8Of(p.sender), recipients: p.recipients.map(utf8Of) };
  };
  let msg = prepare(cfg.hostname);
  if (msg.recipients.length === 0) {
    process.stderr.write('sendmail: no recipients (give them as arguments or use -t)\n');
    return EX_USAGE;
  }
  let backend;
  try {
    backend = await openBackend(cfg, { access: 'create' });
  } catch (err) {
    process.stderr.write(`sendmail: cannot reach the queue: ${(err as Error).message}\n`);
    return EX_TEMPFAIL;
  }
  try {
    // The mail is from the server's `hostname`: a running server says which is in force (this command may
    // run with another file, or the embedded defaults); a stopped one's is the file's.
    if (backend.kind === 'http') {
      const hostname = (await backend.config()).hostname;
      if (hostname !== cfg.hostname) msg = prepare(hostname);
    }
    await backend.inject({ from: msg.sender, to: msg.recipients, contentBase64: Buffer.from(msg.content, 'latin1').toString('base64') },
      { protocol: 'LOCAL', clientHelo: 'sendmail', listener: 'sendmail' });
    return 0;
  } catch (err) {
    process.stderr.write(`sendmail: ${(err as Error).message}\n`);
    if (err instanceof AdminError) return err.code === 'bad_request' ? EX_NOUSER : err.code === 'too_big' ? EX_DATAERR : EX_TEMPFAIL;
    return EX_TEMPFAIL;
  } finally {
    await backend.close();
  }
}

/** -bs: stdin → the local SMTP listener → stdout, until either side closes. */
function smtpProxy(listen: string | undefined): Promise<number> {
  if (!listen) {
    process.stderr.write('sendmail: -bs needs an [smtp] listener\n');
    return Promise.resolve(EX_UNAVAILABLE);
  }
  const { host, port } = splitHostPort(listen);
  const target = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return new Promise((resolve) => {
    const sock = net.connect({ host: target, port });
    sock.once('error', (err) => {
      process.stderr.write(`sendmail: -bs: ${err.message}\n`);
      resolve(EX_UNAVAILABLE);
    });
    sock.once('connect', () => {
      process.stdin.pipe(sock);
      sock.pipe(process.stdout);
    });
    sock.once('close', () => {
      process.stdin.unpipe(sock);
      process.stdin.pause();
      resolve(0);
    });
  });
}
