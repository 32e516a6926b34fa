/**
 * inbound/session — one inbound SMTP connection: reads commands and content,
 * answers them, and hands each finished message to the queue.
 *
 * The thin I/O shell around the pure parts: commands come from smtp/command,
 * paths and parameters from smtp/address and smtp/params, content from
 * smtp/data, order from inbound/states, relay decisions from inbound/policy.
 * Commands are handled strictly one after another (even when pipelined), so
 * replies leave in order. The transaction's envelope is built in
 * inbound/envelope; what a session is given is inbound/session-deps; the
 * listener's limits are inbound/server's job; a RCPT
 * for a routed address may wait for recipient verification (inbound/verifier). The
 * finished message goes through intake/ (trace header, queue write), as
 * every new message does.
 */
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { HalcyonError } from '../errors.js';
import type { ArcChain } from '../intake/arc.js';
import type { Trace } from '../queue/model.js';
import { formatMailbox, isAddressError, parsePath, type Mailbox } from '../smtp/address.js';
import { isCommandError, parseCommand, type Command } from '../smtp/command.js';
import { BdatReader } from '../smtp/bdat.js';
import { DataReader, type DataFlags } from '../smtp/data.js';
import { LineReader } from '../smtp/lines.js';
import { isParamError, parseMailParams, parseRcptParams, type MailParams, type Offered } from '../smtp/params.js';
import { formatReply } from '../smtp/reply.js';
import type { Credentials } from './auth.js';
import { Envelope } from './envelope.js';
import { dmarcAction } from './dmarc-policy.js';
import { relayVerdict } from './policy.js';
import { contentRefusal } from './content-checks.js';
import { rememberedRefusal } from './recipient-memory.js';
import { replyOf, type Refusal, type Reply3 } from './refusal.js';
import { bareAddress, rejectLine } from './reject-line.js';
import { saslContinue, saslStart, type SaslState, type SaslStep } from './sasl.js';
import { dataWithoutRecipients, sequenceCheck, type SessionState } from './states.js';

import type { SessionDeps, SessionSettings } from './session-deps.js';

/** What a refusal is about, for its reject line (inbound/reject-line): the command, the metrics reason, the addresses. */
interface Why { readonly stage: string; readonly reason: string; readonly to?: string; readonly from?: string; readonly extra?: Record<string, unknown> }

type Mode = 'command' | 'data' | 'bdat' | 'auth' | 'tls' | 'closed';

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

export class InboundSession {
  private socket: Socket;
  private mode: Mode = 'command';
  private state: SessionState = 'fresh';
  private readonly lines = new LineReader(512);
  private data: DataReader | undefined;
  private bdat: BdatReader | undefined;
  private authStep: SaslState | undefined;
  private busy = false;
  private errors = 0;
  private helo = '';
  private esmtp = false;
  private secure: string | undefined;
  private authUser: string | undefined;
  private envelope: Envelope | undefined;
  private rcptTried = 0;
  private readonly ip: string;
  /** The DNSBL verdict for this client, asked at connect (undefined: not checked). */
  private listed: Promise<{ readonly zone: string; readonly answer: string } | undefined> | undefined;

  /** `secure`: the TLS description when the socket is already TLS (implicit TLS, port 465): no STARTTLS then. */
  constructor(socket: Socket, private readonly deps: SessionDeps, secure?: string) {
    this.socket = socket;
    this.ip = socket.remoteAddress ?? '0.0.0.0';
    this.secure = secure;
  }

  start(): void {
    // Once per connection, in the background; RCPT waits for it. Relay clients are the site's own.
    if (this.deps.dnsbl && this.settings.kind === 'smtp' && !this.deps.mayRelayFrom(this.ip)) this.listed = this.deps.dnsbl(this.ip);
    this.attach(this.socket);
    this.reply(220, undefined, `${this.deps.settings.hostname} ESMTP Halcyon`);
  }

  /** Draining: an idle session is told 421 now; one in a transaction finishes it first. */
  drain(): void {
    if (this.mode === 'command' && !this.busy && this.state !== 'bdat' && !this.envelope) this.closeWith(...replyOf('HAL_ERR_SHUTTING_DOWN'));
  }

  private get settings(): SessionSettings {
    return this.deps.settings;
  }

  private attach(sock: Socket): void {
    sock.setTimeout(this.settings.commandTimeoutMs);
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('timeout', () => this.closeWith(421, '4.4.2', `${this.settings.hostname} Error: timeout exceeded`));
    sock.on('error', () => { /* reset by peer: 'close' follows */ });
    sock.on('close', () => {
      if (this.mode !== 'closed') this.deps.log.info({ ip: this.ip, event: 'disconnect', abrupt: true }, 'client went away');
      this.mode = 'closed';
    });
  }

  private write(text: string): void {
    if (this.mode !== 'closed' && !this.socket.destroyed) this.socket.write(text);
  }

  private reply(code: number, enhanced: string | undefined, ...lines: string[]): void {
    this.write(formatReply(code, enhanced, ...lines));
  }

  private closeWith(code: number, enhanced: string, text: string): void {
    if (this.mode === 'closed') return;
    this.reply(code, enhanced, text);
    this.mode = 'closed';
    this.socket.end();
    this.deps.log.info({ ip: this.ip, event: 'disconnect', code }, text);
  }

  /** `why`: the refusal gets its reject line (a plain protocol error does not). */
  private error(code: number, enhanced: string, text: string, why?: Why): void {
    this.errors++;
    if (this.errors > this.settings.maxErrors) {
      this.deps.onReject?.('too_many_errors');
      this.logReject({ stage: why?.stage ?? 'COMMAND', reason: 'too_many_errors', to: why?.to, from: why?.from }, [421, '4.7.0', 'Too many errors, closing connection']);
      this.closeWith(421, '4.7.0', 'Too many errors, closing connection');
      return;
    }
    if (why) this.logReject(why, [code, enhanced, text]);
    this.reply(code, enhanced, text);
  }

  /** The one reject line of every refusal (inbound/reject-line): client, HELO, sender, recipient and the reply sent. */
  private logReject(why: Why, [code, enhanced, text]: Reply3): void {
    const client = { ip: this.ip, helo: this.helo, from: why.from ?? this.envelope?.sender, proto: this.trace().protocol, user: this.authUser };
    const { fields, msg } = rejectLine(why.stage, why.reason, client, { code, enhanced, text }, why.to, why.extra);
    this.deps.log.info(fields, msg);
  }

  /** A refusal that is counted, logged and answered (not a protocol error: the error count stays). */
  private refuse(why: Why, reply: Reply3): void {
    this.deps.onReject?.(why.reason);
    this.logReject(why, reply);
    this.reply(...reply);
  }

  private onData(chunk: Buffer): void {
    switch (this.mode) {
      case 'closed':
      case 'tls':
        return;
      case 'data':
        this.feedData(chunk);
        return;
      case 'bdat':
        this.feedBdat(chunk);
        return;
      default:
        this.lines.push(chunk);
        this.pump();
    }
  }

  /** Handles buffered command lines one at a time: synchronously while each is answered at once, waiting for one that is not. */
  private pump(): void {
    if (this.busy) return;
    this.busy = true;
    this.drive(undefined);
  }

  /**
   * The loop of pump, from where it stopped: returns when no complete line is left, or at a command still at work
   * (a RCPT asking the queue, AUTH), after which it carries on. No promise for the commands answered at once.
   */
  private drive(corked: Socket | undefined): void {
    let working: Promise<void> | undefined;
    // Pipelined commands (RFC 2920): their replies are corked and leave in one write when the group is done.
    try {
      while (this.mode === 'command' || this.mode === 'auth') {
        const ev = this.lines.next();
        if (!ev) break;
        if (!corked && this.lines.pending > 0 && this.esmtp) (corked = this.socket).cork();
        if ('overlong' in ev) {
          this.error(500, '5.5.2', 'Line too long (512 octets at most)');
          continue;
        }
        // RFC 2920: without PIPELINING the client waits for each reply. One that
        // does not is a spam engine or a smuggling attempt; Postfix does the same.
        if (this.mode === 'command' && this.lines.pending > 0 && !this.esmtp) {
          this.deps.onReject?.('improper_pipelining');
          this.logReject({ stage: ev.line.split(' ')[0]!.toUpperCase().slice(0, 16), reason: 'improper_pipelining' }, [554, '5.5.0', 'Improper use of SMTP command pipelining']);
          this.closeWith(554, '5.5.0', 'Improper use of SMTP command pipelining');
          break;
        }
        working = this.mode === 'auth' ? this.authContinue(ev.line) : this.command(ev.line);
        if (working) break;
      }
    } finally {
      if (!working) {
        this.busy = false;
        corked?.uncork();
      }
    }
    if (working) {
      void working.then(() => this.drive(corked), (err: unknown) => {
        this.busy = false;
        corked?.uncork();
        throw err;
      });
      return;
    }
    if (this.deps.isDraining()) this.drain();
  }

  /** Answers one command; a promise only for one still at work when this returns. */
  private command(line: string): Promise<void> | undefined {
    const cmd = parseCommand(line);
    if (isCommandError(cmd)) {
      if (cmd.error === 'unknown') this.error(500, '5.5.1', `Error: command not recognized`);
      // A malformed MAIL or RCPT is about a transaction: logged; other syntax errors are only answered.
      else this.error(501, '5.5.2', `Syntax error: ${cmd.detail}`, /^(MAIL|RCPT)$/i.test(cmd.verb) ? { stage: cmd.verb.toUpperCase(), reason: 'syntax' } : undefined);
      return undefined;
    }
    const why = sequenceCheck(this.state, cmd.verb);
    if (why !== undefined) {
      if (cmd.verb === 'DATA' && dataWithoutRecipients(this.state, this.rcptTried)) this.error(554, '5.5.1', 'Error: no valid recipients', { stage: 'DATA', reason: 'no_valid_recipients' });
      else this.error(503, '5.5.1', `Bad sequence of commands: ${why}`);
      return undefined;
    }
    switch (cmd.verb) {
      case 'EHLO':
      case 'HELO':
        this.hello(cmd.verb, cmd.domain);
        break;
      case 'MAIL': {
        const asking = this.mail(cmd.path, cmd.params); // a promise while a session worker asks for the client's rate
        return asking instanceof Promise ? asking : undefined;
      }
      case 'RCPT': {
        const listed = this.authUser === undefined ? this.listed : undefined;
        if (listed) return listed.then((hit) => (hit ? this.refuseListed(hit, cmd.path) : this.rcpt(cmd.path, cmd.params)));
        return this.rcpt(cmd.path, cmd.params);
      }
      case 'DATA':
        this.startData();
        break;
      case 'BDAT':
        this.startBdat(cmd.size, cmd.last);
        break;
      case 'RSET':
        this.resetTransaction();
        this.reply(250, '2.0.0', 'Ok');
        break;
      case 'NOOP':
        this.reply(250, '2.0.0', 'Ok');
        break;
      case 'QUIT':
        this.reply(221, '2.0.0', 'Bye');
        this.mode = 'closed';
        this.socket.end();
        break;
      case 'VRFY':
        this.reply(252, '2.5.0', 'Cannot VRFY user, but will accept message and attempt delivery');
        break;
      case 'EXPN':
        this.error(502, '5.5.1', 'EXPN not supported');
        break;
      case 'HELP':
        this.reply(214, '2.0.0', 'Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH');
        break;
      case 'STARTTLS':
        this.startTls();
        break;
      case 'AUTH':
        return this.auth(cmd);
    }
    return undefined;
  }

  private offered(): Offered {
    return { size: this.esmtp, eightBitMime: this.esmtp, smtputf8: this.esmtp, dsn: this.esmtp, auth: this.esmtp };
  }

  private authAllowed(): boolean {
    return !this.deps.users.empty && (this.secure !== undefined || LOOPBACK.test(this.ip));
  }

  private hello(verb: 'EHLO' | 'HELO', domain: string): void {
    this.resetTransaction();
    this.helo = domain;
    this.esmtp = verb === 'EHLO';
    this.state = 'greeted';
    // Echoed back: control bytes (NUL, ESC …) a client sent never come back verbatim.
    const greet = `${this.settings.hostname} Hello ${domain.replace(/[^\x21-\x7e\p{L}\p{N}\p{M}]/gu, '?').slice(0, 255)} [${this.ip}]`;
    if (!this.esmtp) return this.reply(250, undefined, greet);
    const ext = ['PIPELINING', `SIZE ${this.settings.maxMessageSize}`, '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES'];
    if (this.deps.tlsContext && !this.secure) ext.push('STARTTLS');
    if (this.authAllowed() && !this.authUser) ext.push('AUTH PLAIN LOGIN');
    ext.push('DSN', 'CHUNKING');
    this.reply(250, undefined, greet, ...ext);
  }

  /** Answers MAIL; a promise only while a per-client rate is asked of another thread (a session worker's). */
  private mail(pathText: string, paramText: string): void | Promise<void> {
    const asked = bareAddress(pathText).slice(0, 512); // the sender a MAIL refused before it is parsed named
    if (this.settings.kind === 'submission' && !this.authUser) return this.error(530, '5.7.0', 'Authentication required', { stage: 'MAIL', reason: 'auth_required', from: asked });
    const params = parseMailParams(paramText, this.offered());
    if (isParamError(params)) {
      const why = { stage: 'MAIL', reason: 'syntax', from: asked };
      return params.error === 'unsupported' ? this.error(555, '5.5.4', params.detail, why) : this.error(501, '5.5.4', params.detail, why);
    }
    const path = parsePath(pathText, { utf8: params.smtputf8, allowNull: true });
    if (isAddressError(path)) {
      return this.error(path.error === 'utf8-not-allowed' ? 553 : 501, path.error === 'utf8-not-allowed' ? '5.6.7' : '5.1.7', `Bad sender address: ${path.detail}`,
        { stage: 'MAIL', reason: 'syntax', from: asked });
    }
    const sender = path.mailbox ? formatMailbox(path.mailbox) : '';
    const over = this.deps.rate && !this.deps.mayRelayFrom(this.ip) ? this.deps.rate.messageOver(this.ip) : false;
    if (over instanceof Promise) return over.then((o) => this.mailFrom(o, path.mailbox, params, sender));
    this.mailFrom(over, path.mailbox, params, sender);
  }

  /** MAIL after its parse and its rate (`over`): the sender, size, queue and space checks, then 250. */
  private mailFrom(over: boolean, mailbox: Mailbox | undefined, params: MailParams, sender: string): void {
    if (over) return this.refuse({ stage: 'MAIL', reason: 'rate_messages', from: sender }, replyOf('HAL_ERR_RATE_MESSAGES'));
    if (this.authUser !== undefined && !this.deps.users.maySend(this.authUser, sender)) {
      this.deps.onReject?.('sender_not_owned');
      return this.error(...replyOf('HAL_ERR_SENDER_NOT_OWNED'), { stage: 'MAIL', reason: 'sender_not_owned', from: sender });
    }
    if (params.size !== undefined && params.size > this.settings.maxMessageSize) {
      this.deps.onReject?.('too_big');
      return this.error(...replyOf('HAL_ERR_TOO_BIG'), { stage: 'MAIL', reason: 'too_big', from: sender, extra: { size: params.size } });
    }
    const trouble = this.deps.queueTrouble?.();
    if (trouble !== undefined) {
      // The queue is broken or unreachable: 451 4.3.0 now rather than after the client sent the data.
      // Not logged per message: the change of the queue's health was logged once.
      this.deps.onReject?.('queue_unavailable');
      return this.error(...replyOf(trouble));
    }
    if (this.deps.acceptsMail && !this.deps.acceptsMail(params.size)) {
      // A full disk: new mail waits (452 4.3.1) while what is queued is delivered (queue/space).
      this.deps.onReject?.('queue_full');
      return this.error(...replyOf('HAL_ERR_QUEUE_WRITE'), { stage: 'MAIL', reason: 'queue_full', from: sender });
    }
    this.envelope = new Envelope(mailbox, params);
    this.rcptTried = 0;
    this.state = 'mail';
    this.reply(250, '2.1.0', 'Ok');
  }

  /** RCPT from a client on a DNSBL: 554 5.7.1, after the greeting so its sender and recipients are logged. */
  private refuseListed(hit: { readonly zone: string; readonly answer: string }, rcpt: string): void {
    this.rcptTried++;
    const [code, enhanced, text] = replyOf('HAL_ERR_DNSBL_LISTED');
    this.deps.onReject?.('dnsbl');
    const refusal: Reply3 = [code, enhanced, `${text}; client [${this.ip}] blocked using ${hit.zone}`];
    this.logReject({ stage: 'RCPT', reason: 'dnsbl', to: rcpt, extra: { dnsbl: hit.zone, answer: hit.answer } }, refusal);
    this.reply(...refusal);
  }

  private async rcpt(pathText: string, paramText: string): Promise<void> {
    const env = this.envelope!;
    this.rcptTried++;
    if (this.authUser !== undefined && this.deps.rate && !this.deps.mayRelayFrom(this.ip) && await this.deps.rate.recipientOver(this.authUser)) {
      return this.refuse({ stage: 'RCPT', reason: 'rate_recipients', to: pathText }, replyOf('HAL_ERR_RATE_RECIPIENTS'));
    }
    if (env.count >= this.settings.maxRecipients) {
      this.logReject({ stage: 'RCPT', reason: 'too_many_recipients', to: pathText }, [452, '4.5.3', 'Error: too many recipients']);
      return this.reply(452, '4.5.3', 'Error: too many recipients');
    }
    const syntax = { stage: 'RCPT', reason: 'syntax', to: pathText };
    const params = parseRcptParams(paramText, this.offered());
    if (isParamError(params)) return params.error === 'unsupported' ? this.error(555, '5.5.4', params.detail, syntax) : this.error(501, '5.5.4', params.detail, syntax);
    const path = parsePath(pathText, { utf8: env.params.smtputf8, allowNull: false });
    if (isAddressError(path)) {
      const code = path.error === 'utf8-not-allowed' ? 553 : 501;
      return this.error(code, path.error === 'utf8-not-allowed' ? '5.6.7' : '5.1.3', `Bad recipient address: ${path.detail}`, syntax);
    }
    const dir = this.deps.directory;
    const verdict = relayVerdict({
      path,
      mayRelay: this.authUser !== undefined || this.deps.mayRelayFrom(this.ip),
      isLocalDomain: (d) => dir.isLocalDomain(d),
      isStoreDomain: (d) => dir.isStoreDomain?.(d) ?? false,
    });
    if (verdict.kind === 'refuse') {
      this.deps.onReject?.('relay_denied');
      return this.error(verdict.refusal.code, verdict.refusal.enhanced, verdict.refusal.text, { stage: 'RCPT', reason: 'relay_denied', to: pathText });
    }
    const address = formatMailbox(path.mailbox!);
    if (verdict.kind === 'relay') {
      // The suppression list, then recipient verification: refused now, not bounced later (inbound/recipient-memory).
      const remembered = await rememberedRefusal(this.deps, address, path.mailbox!.domain);
      if (remembered) return this.refuse({ stage: 'RCPT', reason: remembered.reason, to: address, ...(remembered.extra ? { extra: remembered.extra } : {}) }, remembered.reply);
    }
    const result = env.addRecipient(path.mailbox!, params, verdict.kind, dir);
    if (!result.ok) {
      const reason = result.refusal.enhanced === '5.2.2' || result.refusal.enhanced === '4.2.2' ? 'mailbox_full' : 'unknown_user';
      return this.refuse({ stage: 'RCPT', reason, to: address }, [result.refusal.code, result.refusal.enhanced, result.refusal.text]);
    }
    this.state = 'rcpt';
    this.reply(250, '2.1.5', 'Ok');
  }

  private startData(): void {
    this.reply(354, undefined, 'End data with <CR><LF>.<CR><LF>');
    this.mode = 'data';
    this.socket.setTimeout(this.settings.dataTimeoutMs);
    this.data = new DataReader(this.settings.maxMessageSize);
    const rest = this.lines.takeRest();
    if (rest.length > 0) this.feedData(rest);
  }

  private feedData(chunk: Buffer): void {
    const done = this.data!.push(chunk);
    if (!done) return;
    this.data = undefined;
    this.mode = 'command';
    this.socket.setTimeout(this.settings.commandTimeoutMs);
    this.lines.push(done.rest);
    this.busy = true;
    void this.finish(done.result.content, done.result.flags).finally(() => {
      this.busy = false;
      this.pump();
    });
  }

  private startBdat(size: number, last: boolean): void {
    // A transaction's chunks share one reader; resetTransaction drops it.
    this.bdat ??= new BdatReader(this.settings.maxMessageSize);
    this.bdat.chunk(size, last);
    this.state = 'bdat';
    this.mode = 'bdat';
    this.socket.setTimeout(this.settings.dataTimeoutMs);
    this.feedBdat(this.lines.takeRest());
  }

  private feedBdat(chunk: Buffer): void {
    const step = this.bdat!.push(chunk);
    if (!step) return;
    this.mode = 'command';
    this.socket.setTimeout(this.settings.commandTimeoutMs);
    this.lines.push(step.rest);
    if (!step.last) {
      this.reply(250, '2.0.0', `${step.size} octets received`);
      this.pump();
      return;
    }
    this.bdat = undefined;
    this.busy = true;
    void this.finish(step.content, step.flags).finally(() => {
      this.busy = false;
      this.pump();
    });
  }

  /** End of content: checks, trace headers, durable enqueue, then the one reply. */
  private async finish(content: Buffer, flags: DataFlags): Promise<void> {
    const env = this.envelope!;
    const refuse = ({ reason, reply }: Refusal): void => {
      this.resetTransaction();
      this.refuse({ stage: 'END-OF-DATA', reason, from: env.sender, to: env.recipients[0]?.address, extra: { nrcpt: env.count } }, reply);
    };
    const bad = contentRefusal(content, flags, this.settings);
    if (bad) return refuse(bad);
    const trace = this.trace();
    const ours = this.authUser !== undefined || this.deps.mayRelayFrom(this.ip);
    const judged = ours ? undefined : await this.judge(env.sender, content);
    if (judged && 'reply' in judged) return refuse(judged);
    let accepted;
    try {
      accepted = await this.deps.intake.accept({
        origin: this.settings.kind, sender: env.sender, params: { ...env.queueParams, size: env.params.size }, trace, content, recipients: env.recipients,
        ours, authResults: judged?.authResults, quarantine: judged?.quarantine, arcChain: judged?.arc, forwardedBy: env.forwardedBy,
      });
    } catch (err) {
      this.deps.log.error({ ip: this.ip, event: 'queue_write_failed', err: (err as Error).message }, 'queue write failed');
      // Whatever the store threw, the client hears "try again": never a 250, never a permanent refusal.
      // Broken or unreachable storage is 451 4.3.0; anything else (a full disk above all) stays 452 4.3.1.
      const code = err instanceof HalcyonError && (err.code === 'HAL_ERR_QUEUE_FAILED' || err.code === 'HAL_ERR_QUEUE_UNAVAILABLE') ? err.code : 'HAL_ERR_QUEUE_WRITE';
      return refuse({ reason: 'queue_write', reply: replyOf(code) });
    }
    const { id, size, messageId, arc, tenant, campaign } = accepted;
    this.deps.log.info({ event: 'accepted', queue_id: id, from: env.sender, nrcpt: env.count, size, message_id: messageId, ip: this.ip, helo: this.helo, proto: trace.protocol, user: this.authUser, ...(arc ? { arc } : {}), tenant, campaign },
      `${id}: accepted from=<${env.sender}> size=${size} nrcpt=${env.count} message_id=${messageId ?? 'none'}${tenant ? ` tenant=${tenant}` : ''}${campaign ? ` campaign=${campaign}` : ''}`);
    this.deps.onMessage?.({ id, size, recipients: env.count, ...(tenant ? { tenant } : {}) });
    this.resetTransaction();
    this.reply(250, '2.0.0', `Ok: queued as ${id}`);
  }

  /**
   * Mail from outside on the MX listener: SPF/DKIM/DMARC/ARC (inbound/authcheck), then what
   * `[inbound] dmarc` makes of it (inbound/dmarc-policy). Undefined when nothing is verified.
   */
  private async judge(sender: string, content: Buffer): Promise<{ authResults: string; quarantine: boolean; arc: ArcChain } | Refusal | undefined> {
    const checker = this.deps.authChecker;
    if (!checker || !this.settings.verify || this.settings.kind !== 'smtp') return undefined;
    const result = await checker.check({ ip: this.ip, helo: this.helo, sender, message: content });
    const action = dmarcAction(this.settings.dmarc, result.summary);
    this.deps.log.info({ ip: this.ip, event: 'auth', from: sender, dmarc: result.summary.dmarc, policy: result.summary.policy, action: action.kind },
      result.header.replace(/\r\n\t?/g, ' ').trim());
    if (action.kind === 'reject') return { reason: 'dmarc_reject', reply: [action.code, action.enhanced, action.text] };
    if (action.kind === 'tempfail') return { reason: 'auth_tempfail', reply: [action.code, action.enhanced, action.text] };
    return { authResults: result.header, quarantine: action.kind === 'quarantine', arc: result.arc };
  }

  private trace(): Trace {
    const protocol = `${this.esmtp ? 'ESMTP' : 'SMTP'}${this.secure ? 'S' : ''}${this.authUser ? 'A' : ''}`;
    return { clientIp: this.ip, clientHelo: this.helo, protocol, authUser: this.authUser, tls: this.secure, listener: this.settings.kind };
  }

  private resetTransaction(): void {
    this.envelope = undefined;
    this.bdat = undefined;
    this.rcptTried = 0;
    if (this.state !== 'fresh') this.state = 'greeted';
  }

  private startTls(): void {
    const ctx = this.deps.tlsContext;
    if (!ctx) return this.error(454, '4.7.0', 'TLS not available');
    if (this.secure) return this.error(503, '5.5.1', 'Already using TLS');
    this.reply(220, '2.0.0', 'Ready to start TLS');
    this.socket.uncork(); // a pipelined group's replies, this one last, leave in the clear before the handshake
    // CVE-2011-0411: whatever the client sent after STARTTLS in plaintext is discarded.
    this.lines.takeRest();
    this.mode = 'tls';
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('timeout');
    const secure = new tls.TLSSocket(plain, { isServer: true, secureContext: ctx });
    secure.on('secure', () => {
      const cipher = secure.getCipher();
      this.secure = `${secure.getProtocol() ?? 'TLS'} with cipher ${cipher.standardName ?? cipher.name}`;
      this.socket = secure;
      this.state = 'fresh';
      this.esmtp = false;
      this.helo = '';
      this.mode = 'command';
      this.attach(secure);
    });
    secure.on('error', (err) => {
      this.deps.log.info({ ip: this.ip, event: 'tls_failed', err: err.message }, 'TLS handshake failed');
      this.mode = 'closed';
      plain.destroy();
    });
  }

  private async auth(cmd: Extract<Command, { verb: 'AUTH' }>): Promise<void> {
    if (!this.authAllowed()) return this.error(538, '5.7.11', 'Encryption required for requested authentication mechanism', { stage: 'AUTH', reason: 'auth_encryption_required' });
    if (this.authUser) return this.error(503, '5.5.1', 'Already authenticated');
    if (await this.deps.authThrottle?.lockedUntil(this.ip) !== undefined) {
      this.deps.onReject?.('auth_locked');
      return this.error(...replyOf('HAL_ERR_AUTH_LOCKED'), { stage: 'AUTH', reason: 'auth_locked' });
    }
    return this.authStepped(saslStart(cmd.mechanism, cmd.initial));
  }

  private async authContinue(line: string): Promise<void> {
    return this.authStepped(saslContinue(this.authStep!, line));
  }

  private async authStepped(step: SaslStep): Promise<void> {
    if (step.kind === 'challenge') {
      this.authStep = step.state;
      this.mode = 'auth';
      return this.reply(334, undefined, step.text);
    }
    this.authStep = undefined;
    this.mode = 'command';
    if (step.kind === 'error') return this.error(step.code, step.enhanced, step.text);
    return this.authFinish(step.credentials);
  }

  private async authFinish(creds: Credentials): Promise<void> {
    // scrypt is deliberately slow; yield first so other sessions keep moving.
    await new Promise((r) => setImmediate(r));
    if (!this.deps.users.check(creds)) {
      this.deps.onReject?.('auth_failed');
      const delay = await this.deps.authThrottle?.failed(this.ip) ?? 0;
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      return this.error(535, '5.7.8', 'Authentication credentials invalid', { stage: 'AUTH', reason: 'auth_failed', extra: { sasl_username: creds.user } });
    }
    this.authUser = creds.user;
    this.deps.log.info({ ip: this.ip, event: 'auth', user: creds.user }, 'authenticated');
    this.reply(235, '2.7.0', 'Authentication successful');
  }
}
