/**
 * scripts/fuzz — long-running property checks of the protocol layer and the
 * DATA reader with fast-check (`npm run fuzz`; not part of `npm test`).
 *
 * FUZZ_RUNS runs per property (default 1,000,000); FUZZ_SEED to replay a
 * failure (fast-check prints the seed and the shrunk counterexample). Each
 * property states what must hold for ANY input an attacker can send:
 *
 * - command lines: parseCommand never throws; a parsed MAIL/RCPT path is <…>;
 * - addresses on the wire: any mailbox the parser accepts, formatted by
 *   formatMailbox and written as MAIL FROM / RCPT TO with parameters, parses
 *   back to the same mailbox and parameters (wire-check agrees);
 * - ESMTP parameters: parseMailParams / parseRcptParams never throw;
 * - command lines read from bytes cut anywhere: LineReader never throws and
 *   never returns a line holding LF, or longer than its limit;
 * - DATA: DataReader never throws, whatever the bytes and however they are
 *   cut; the result does not depend on the cuts; stored content never holds a
 *   bare CR or LF; dotStuff → DataReader gives the content back;
 * - replies: ReplyParser never throws and keeps at most one line's worth of
 *   bytes buffered.
 */
import fc from 'fast-check';
import { wireMismatch } from '../src/delivery/wire-check.js';
import { formatMailbox, parseMailbox, parsePath } from '../src/smtp/address.js';
import { isCommandError, parseCommand } from '../src/smtp/command.js';
import { DataReader } from '../src/smtp/data.js';
import { dotStuff } from '../src/smtp/dotstuff.js';
import { LineReader } from '../src/smtp/lines.js';
import { parseMailParams, parseRcptParams } from '../src/smtp/params.js';
import { ReplyParser } from '../src/smtp/reply.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 1_000_000);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const OFFERED = { size: true, eightBitMime: true, smtputf8: true, dsn: true, auth: true };

/** Characters that matter to SMTP, mixed with anything. */
const nasty = fc.constantFrom('<', '>', '"', '\\', '@', ' ', ':', ',', '.', '\r', '\n', '\r\n', '\x00', '\x1b', '=', '+', 'é', '[', ']', 'MAIL FROM:', 'RCPT TO:', 'SIZE=1', 'RET=FULL');
const mixed = fc.array(fc.oneof(nasty, fc.string({ maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 4 })), { maxLength: 40 }).map((a) => a.join(''));
const bytes = fc.array(fc.oneof(fc.constantFrom('\r', '\n', '\r\n', '.', '\r\n.\r\n', '\r\n..', '\n.\n', '\x00', 'a', 'é'), fc.string({ maxLength: 8 })), { maxLength: 50 }).map((a) => Buffer.from(a.join(''), 'utf8'));
const cuts = fc.array(fc.nat(400), { maxLength: 6 });

function pieces(buf: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, buf.length]) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  return out;
}

function check(name: string, prop: fc.IProperty<never> | fc.IPropertyWithHooks<never>): void {
  const t0 = Date.now();
  fc.assert(prop as fc.IProperty<unknown>, { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) });
  process.stdout.write(`ok  ${name}: ${RUNS} runs in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}

const props: [string, () => fc.IProperty<never>][] = [
  ['parseCommand never throws; a MAIL/RCPT path is <…>', () => fc.property(mixed, (line) => {
    const c = parseCommand(line);
    if (!isCommandError(c) && (c.verb === 'MAIL' || c.verb === 'RCPT') && !(c.path.startsWith('<') && c.path.endsWith('>'))) throw new Error(`path ${c.path}`);
  }) as unknown as fc.IProperty<never>],
  ['an accepted mailbox, formatted and written as MAIL/RCPT, parses back to itself', () => fc.property(mixed, fc.constantFrom('a.test', 'example.test', '[192.0.2.1]'), fc.boolean(), (local, domain, quote) => {
    const text = quote ? `"${local.replace(/(["\\])/g, '\\$1')}"@${domain}` : `${local}@${domain}`;
    const mb = parseMailbox(text, true);
    if ('error' in mb) return;
    const addr = formatMailbox(mb);
    const again = parsePath(`<${addr}>`, { utf8: true, allowNull: false });
    if ('error' in again || again.mailbox?.local !== mb.local) throw new Error(`${addr} does not re-parse to ${JSON.stringify(mb.local)}`);
    const why = wireMismatch('MAIL', `MAIL FROM:<${addr}> SIZE=10 RET=HDRS\r\n`, addr, ['SIZE=10', 'RET=HDRS'])
      ?? wireMismatch('RCPT', `RCPT TO:<${addr}> NOTIFY=NEVER\r\n`, addr, ['NOTIFY=NEVER']);
    if (why) throw new Error(`${addr}: ${why}`);
  }) as unknown as fc.IProperty<never>],
  ['ESMTP parameter parsers never throw', () => fc.property(mixed, (p) => {
    parseMailParams(p, OFFERED);
    parseRcptParams(p, OFFERED);
  }) as unknown as fc.IProperty<never>],
  ['LineReader: any bytes cut anywhere; no line holds LF or exceeds the limit', () => fc.property(bytes, cuts, (buf, at) => {
    const r = new LineReader(64);
    for (const p of pieces(buf, at)) {
      r.push(p);
      for (let e = r.next(); e; e = r.next()) if ('line' in e && (e.line.includes('\n') || Buffer.byteLength(e.line) > 64)) throw new Error(JSON.stringify(e.line));
    }
  }) as unknown as fc.IProperty<never>],
  ['DataReader: any bytes cut anywhere; same result for any cuts; no bare CR or LF stored', () => fc.property(bytes, cuts, (body, at) => {
    const wire = Buffer.concat([body, Buffer.from('\r\n.\r\n')]);
    const whole = new DataReader(1 << 16).push(wire);
    const reader = new DataReader(1 << 16);
    let cut: ReturnType<DataReader['push']>;
    const ps = pieces(wire, at);
    let i = 0;
    for (; i < ps.length; i++) if ((cut = reader.push(ps[i]!))) break;
    if (!whole || !cut!) throw new Error('the terminator was not found');
    // The bytes after the end (pipelined commands) are the chunk's rest plus the chunks never pushed.
    const after = Buffer.concat([cut.rest, ...ps.slice(i + 1)]);
    if (!whole.result.content.equals(cut.result.content) || !whole.rest.equals(after)) throw new Error('cuts changed the result');
    const s = whole.result.content.toString('latin1');
    if (/\r(?!\n)|(?<!\r)\n/.test(s)) throw new Error('bare CR or LF stored');
  }) as unknown as fc.IProperty<never>],
  ['dotStuff then DataReader gives the content back (CRLF-normalized)', () => fc.property(bytes, cuts, (content, at) => {
    const wire = dotStuff(content);
    const reader = new DataReader(1 << 16);
    let done: ReturnType<DataReader['push']>;
    for (const p of pieces(wire, at)) if ((done = reader.push(p))) break;
    const lines = content.toString('latin1').replace(/\r\n|\r|\n/g, '\n');
    const expected = (lines === '' || lines.endsWith('\n') ? lines : `${lines}\n`).replace(/\n/g, '\r\n');
    if (!done! || done.result.content.toString('latin1') !== expected) throw new Error('content changed');
  }) as unknown as fc.IProperty<never>],
  ['ReplyParser: any bytes never throw; buffered bytes stay bounded', () => fc.property(bytes, cuts, (buf, at) => {
    const p = new ReplyParser({ maxLine: 64, maxLines: 8, maxBytes: 256 });
    for (const c of pieces(buf, at)) {
      p.push(c);
      if (p.buffered > 64 + 2) throw new Error(`buffered ${p.buffered}`);
    }
  }) as unknown as fc.IProperty<never>],
];

const t0 = Date.now();
process.stdout.write(`fuzz: ${props.length} properties × ${RUNS} runs${SEED !== undefined ? `, seed ${SEED}` : ''}\n`);
for (const [name, prop] of props) check(name, prop());
process.stdout.write(`all properties held: ${props.length * RUNS} runs in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
