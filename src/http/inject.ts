/**
 * http/inject — the injection API (POST /api/inject/v1; POST /api/messages is
 * the same handler with its older field names): a request turned into
 * messages queued through intake, and the answer for each recipient.
 *
 * One request:
 * 1. the token's rate ([inject] rate/burst: 429 with Retry-After);
 * 2. its shape (400) and limits ([inject] max_recipients: 413);
 * 3. with an Idempotency-Key: see 6 — a key stored for this token within
 *    24 h answers with its first response and queues nothing (another body: 422);
 * 4. each recipient: its address (invalid → rejected with the reason), a
 *    local mailbox (unknown → rejected), the suppression list → rejected (not
 *    in the older all-or-nothing shape, which sendmail sends);
 * 5. the content: raw RFC 5322, or structured and composed
 *    (http/inject-content), once, or once per recipient when a recipient has
 *    `vars`; a message over smtp.max_message_size → 413;
 * 6. everything queued by intake in ONE commit with the key row holding this
 *    very response (Intake.acceptGroup). A concurrent request with the same key
 *    loses at that commit (HAL_ERR_IDEMPOTENCY_TAKEN, on any node) and answers
 *    with the winner's response once it is committed.
 *
 * Relay: a token holder is an authenticated client, so any domain may be a
 * recipient's. Does not speak HTTP (http/server, http/routes) nor log (the
 * caller's `onInjected`); docs/events.md documents the API.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { HalcyonError } from '../errors.js';
import type { RecipientDirectory } from '../inbound/envelope.js';
import { cleanLabel, type Accepted, type Intake, type Submission } from '../intake/intake.js';
import { IDEMPOTENCY_TTL_MS, type IdempotencyRecord, type IdempotencyStore } from '../queue/idempotency.js';
import type { NewRecipient, Trace } from '../queue/model.js';
import { suppressedReply, suppressionKey, type SuppressionList } from '../queue/suppression.js';
import { formatMailbox, parseMailbox, parsePath, isAddressError } from '../smtp/address.js';
import { AdminError } from './admin-api.js';
import { composeStructured, parseStructured, type StructuredContent, type Vars } from './inject-content.js';
import type { TokenBuckets } from './token-bucket.js';

export interface InjectDeps {
  readonly intake: Intake;
  readonly directory: RecipientDirectory;
  readonly idempotency: Pick<IdempotencyStore, 'getIdempotency'>;
  readonly suppressions: Pick<SuppressionList, 'suppressed'>;
  readonly clock: () => number;
  readonly config: () => Config;
  readonly maxMessageSize: () => number;
  /** Requests per second per token (absent: no limit, as for the CLI on a stopped server). */
  readonly buckets?: TokenBuckets;
}

export interface InjectContext {
  /** Who sends: the API token's name (keys and rates are per token). */
  readonly token: string;
  readonly idempotencyKey?: string;
  readonly trace?: Partial<Trace>;
}

export interface RecipientResult {
  readonly email: string;
  readonly status: 'accepted' | 'rejected';
  readonly reason: string | null;
  readonly queue_id: string | null;
}

export interface InjectResponse {
  readonly queue_id: string | null;
  readonly recipients: readonly RecipientResult[];
  /** When nothing was queued: why (every recipient was rejected). */
  readonly error?: string;
  readonly message?: string;
}

export interface InjectResult {
  readonly status: number;
  readonly body: InjectResponse;
  /** The stored first response of this Idempotency-Key, returned again: nothing was queued now. */
  readonly replayed: boolean;
  /** What was queued now, with its sender and recipients (for the accepted log lines). */
  readonly queued: readonly { readonly accepted: Accepted; readonly from: string; readonly nrcpt: number }[];
}

type Content = { readonly kind: 'raw'; readonly bytes: Buffer } | { readonly kind: 'structured'; readonly c: StructuredContent };

interface Request {
  readonly from: string;
  readonly recipients: readonly { readonly email: string; readonly vars?: Vars }[];
  readonly content: Content;
  readonly tenant?: string;
  readonly campaign?: string;
  readonly metadata?: Readonly<Record<string, unknown>>;
  /**
   * The older shape (`to`): as POST /api/messages always was — all or nothing (one rejected recipient refuses the
   * request, 400), and the suppression list is not read (as Postfix's sendmail, which sends this shape: queued mail
   * to a suppressed address fails in the scheduler, without a connection, with one DSN).
   */
  readonly strict: boolean;
}

const MAX_METADATA_BYTES = 4096;
const KEY_SHAPE = /^[\x21-\x7e]{1,255}$/;
/** How long a request that lost its key to a concurrent one waits for the winner's commit to be visible. */
const WAIT_FOR_WINNER_MS = 10_000;

const bad = (message: string) => new AdminError('bad_request', message);

/** JSON with object keys sorted: the same request hashes the same whatever order its client wrote the fields in. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function label(o: Record<string, unknown>, k: string): string | undefined {
  const v = o[k];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || v.length > 128) throw bad(`${k} must be a string of at most 128 characters`);
  return cleanLabel(v);
}

/** The request's fields, either shape (`recipients`/`content`, or the older `to`/`content`/`content_base64`); 400/413 when wrong. */
export function parseRequest(body: unknown, maxRecipients: number): Request {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('expected a JSON object');
  const o = body as Record<string, unknown>;
  if (typeof o.from !== 'string') throw bad('from must be a string (the envelope sender; "" for the null sender)');
  const list = o.recipients ?? o.to;
  const given = typeof list === 'string' ? [list] : list;
  if (!Array.isArray(given) || given.length === 0) throw bad('recipients must be a non-empty array of addresses or {"email", "vars"} objects');
  if (given.length > maxRecipients) throw new AdminError('too_big', `too many recipients: ${given.length}, at most ${maxRecipients} per request ([inject] max_recipients)`, 'too_many_recipients');
  const recipients = given.map((r, i) => {
    if (typeof r === 'string') return { email: r };
    if (typeof r !== 'object' || r === null || typeof (r as { email?: unknown }).email !== 'string') throw bad(`recipients[${i}] must be an address or {"email": …, "vars": {…}}`);
    const { email, vars } = r as { email: string; vars?: unknown };
    if (vars === undefined || vars === null) return { email };
    if (typeof vars !== 'object' || Array.isArray(vars)) throw bad(`recipients[${i}].vars must be an object`);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(vars)) {
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw bad(`recipients[${i}].vars.${k} must be a string or a number`);
      out[k] = String(v);
    }
    return { email, vars: out };
  });
  let content: Content;
  if (typeof o.content_base64 === 'string') {
    if (o.content !== undefined) throw bad('give content or content_base64, not both');
    content = { kind: 'raw', bytes: Buffer.from(o.content_base64, 'base64') };
  } else if (typeof o.content === 'string') {
    content = { kind: 'raw', bytes: Buffer.from(o.content, 'utf8') };
  } else if (typeof o.content === 'object' && o.content !== null && !Array.isArray(o.content)) {
    const c = parseStructured(o.content as Record<string, unknown>);
    if (typeof c === 'string') throw bad(c);
    content = { kind: 'structured', c };
  } else {
    throw bad('content must be raw RFC 5322 text, or {subject, text, html, headers, attachments}');
  }
  if (content.kind === 'raw' && recipients.some((r) => r.vars)) throw bad('vars need structured content ({subject, text, html}): raw content is queued as it is');
  let metadata: Record<string, unknown> | undefined;
  if (o.metadata !== undefined && o.metadata !== null) {
    if (typeof o.metadata !== 'object' || Array.isArray(o.metadata)) throw bad('metadata must be an object');
    if (Buffer.byteLength(JSON.stringify(o.metadata)) > MAX_METADATA_BYTES) throw bad(`metadata must be at most ${MAX_METADATA_BYTES} bytes of JSON`);
    metadata = o.metadata as Record<string, unknown>;
  }
  const tenant = label(o, 'tenant');
  const campaign = label(o, 'campaign');
  return { from: o.from, recipients, content, strict: o.recipients === undefined, ...(tenant ? { tenant } : {}), ...(campaign ? { campaign } : {}), ...(metadata ? { metadata } : {}) };
}

/** Any line ending → CRLF, so the stored message is what SMTP would have stored. Bytes are kept as they are. */
export function toCrlf(text: Buffer): Buffer {
  // latin1 maps each byte to one char and back: line endings change, nothing else does.
  const t = text.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n');
  return Buffer.from(t.endsWith('\r\n') ? t : `${t}\r\n`, 'latin1');
}

/** One recipient's fate before anything is queued: its queue rows, or why it is refused. */
type Fate = { readonly ok: true; readonly targets: readonly NewRecipient[] } | { readonly ok: false; readonly reason: string };

export class Injector {
  constructor(private readonly d: InjectDeps) {}

  async inject(body: unknown, ctx: InjectContext): Promise<InjectResult> {
    const cfg = this.d.config();
    const wait = this.d.buckets?.take(ctx.token, this.d.clock(), cfg.inject.rate, cfg.inject.burst) ?? 0;
    if (wait > 0) throw new AdminError('too_many_requests', `more than ${cfg.inject.rate} requests per second for token ${ctx.token} ([inject] rate)`, 'rate_limited', Math.ceil(wait / 1000));
    const req = parseRequest(body, cfg.inject.max_recipients);
    const key = ctx.idempotencyKey;
    if (key !== undefined && !KEY_SHAPE.test(key)) throw bad('Idempotency-Key must be 1–255 printable characters');
    const hash = createHash('sha256').update(canonicalJson(body)).digest('hex');
    for (let round = 0; ; round++) {
      try {
        // No lookup first: the commit itself finds a key that is taken (a replay is rare; a lookup before every
        // first request would cost a queue round trip each).
        return await this.queue(req, ctx, key === undefined ? undefined : { key, hash });
      } catch (err) {
        if (key === undefined) throw err;
        const taken = err instanceof HalcyonError && err.code === 'HAL_ERR_IDEMPOTENCY_TAKEN';
        // Refused before the commit (a recipient suppressed since, in the all-or-nothing shape): a key stored by
        // the first request still answers as it did.
        if (!taken && !(err instanceof AdminError)) throw err;
        // Taken: another request with this key won the commit. Answer as it did, once its row can be read (the
        // winner's batch may still be committing); should its commit fail after all, try again.
        const first = taken ? await this.waitForKey(ctx.token, key) : await this.d.idempotency.getIdempotency(ctx.token, key, this.d.clock() - IDEMPOTENCY_TTL_MS);
        if (first) return replay(first, hash);
        if (!taken || round >= 2) throw err;
      }
    }
  }

  private async waitForKey(token: string, key: string): Promise<IdempotencyRecord | undefined> {
    const until = Date.now() + WAIT_FOR_WINNER_MS;
    for (let delay = 10; ; delay = Math.min(delay * 2, 250)) {
      const row = await this.d.idempotency.getIdempotency(token, key, this.d.clock() - IDEMPOTENCY_TTL_MS);
      if (row || Date.now() >= until) return row;
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  private async queue(req: Request, ctx: InjectContext, key: { key: string; hash: string } | undefined): Promise<InjectResult> {
    const sender = parsePath(`<${req.from}>`, { utf8: true, allowNull: true });
    if (isAddressError(sender)) throw bad(`from: ${sender.detail}`);
    const from = sender.mailbox ? formatMailbox(sender.mailbox) : '';
    const rawSize = req.content.kind === 'raw' ? req.content.bytes.length : undefined;
    const fates = await this.fates(req, rawSize);
    if (req.strict && fates.some((f) => !f.ok)) {
      throw bad(fates.flatMap((f, i) => (f.ok ? [] : [`to <${req.recipients[i]!.email}>: ${f.reason}`])).join('; '));
    }
    const trace: Trace = { clientIp: '127.0.0.1', clientHelo: 'localhost', protocol: 'HTTP', listener: 'http', ...ctx.trace };
    const ok = fates.flatMap((f, i) => (f.ok ? [i] : []));
    const perRecipient = req.content.kind === 'structured' && req.recipients.some((r) => r.vars);
    // Which message (index into subs) each accepted recipient is in.
    const messageOf = new Map<number, number>();
    const subs: Submission[] = [];
    const add = async (who: readonly number[], vars: Vars | undefined): Promise<void> => {
      const seen = new Set<string>();
      const recipients = who.flatMap((i) => (fates[i] as Extract<Fate, { ok: true }>).targets).filter((t) => {
        const k = t.address.toLowerCase();
        return seen.has(k) ? false : (seen.add(k), true);
      });
      const to = who.length === 1 ? req.recipients[who[0]!]!.email : 'undisclosed-recipients:;';
      const content = toCrlf(req.content.kind === 'raw' ? req.content.bytes : await composeStructured(req.content.c, { from: from || `MAILER-DAEMON@${this.d.config().hostname}`, to }, vars));
      if (content.length > this.d.maxMessageSize()) throw new AdminError('too_big', `message size ${content.length} exceeds the maximum of ${this.d.maxMessageSize()} bytes (smtp.max_message_size)`, 'message_too_big');
      for (const i of who) messageOf.set(i, subs.length);
      subs.push({
        origin: 'local', sender: from, trace, content, recipients,
        params: { smtputf8: /[^\x00-\x7f]/.test(from + recipients.map((r) => r.address).join('')), ...(content.some((b) => b > 0x7f) ? { body: '8BITMIME' as const } : {}) },
        ...(req.tenant ? { tenant: req.tenant } : {}), ...(req.campaign ? { campaign: req.campaign } : {}), ...(req.metadata ? { metadata: req.metadata } : {}),
      });
    };
    if (perRecipient) for (const i of ok) await add([i], req.recipients[i]!.vars ?? {});
    else if (ok.length > 0) await add(ok, undefined);

    const answer = (ids: readonly string[]): { status: number; body: InjectResponse } => {
      const recipients = req.recipients.map((r, i): RecipientResult => {
        const f = fates[i]!;
        return f.ok ? { email: r.email, status: 'accepted', reason: null, queue_id: ids[messageOf.get(i)!] ?? null }
          : { email: r.email, status: 'rejected', reason: f.reason, queue_id: null };
      });
      if (ids.length === 0) return { status: 400, body: { error: 'no_recipient_accepted', message: 'no recipient was accepted; nothing was queued', queue_id: null, recipients } };
      return { status: 201, body: { queue_id: ids[0]!, recipients } };
    };
    const record = (ids: readonly string[]): IdempotencyRecord => {
      const a = answer(ids);
      return { token: ctx.token, key: key!.key, bodyHash: key!.hash, state: ids.length > 0 ? 'accepted' : 'rejected', status: a.status, response: JSON.stringify(a.body), createdAt: this.d.clock() };
    };
    if (subs.length === 0 && key === undefined) return { ...answer([]), replayed: false, queued: [] };
    const accepted = await this.d.intake.acceptGroup(subs, key === undefined ? undefined : (acc) => record(acc.map((a) => a.id)));
    const ids = accepted.map((a) => a.id);
    return { ...answer(ids), replayed: false, queued: accepted.map((a, i) => ({ accepted: a, from, nrcpt: subs[i]!.recipients.length })) };
  }

  /** Each recipient's queue rows (local aliases expanded), or why it is refused. */
  private async fates(req: Request, size: number | undefined): Promise<Fate[]> {
    const dir = this.d.directory;
    const seen = new Set<string>();
    const fates: Fate[] = req.recipients.map(({ email }) => {
      const mb = parseMailbox(email, true);
      if ('error' in mb) return { ok: false, reason: `invalid address: ${mb.detail}` };
      const address = formatMailbox(mb);
      if (seen.has(address.toLowerCase())) return { ok: false, reason: 'duplicate recipient in this request' };
      seen.add(address.toLowerCase());
      if (!dir.isLocalDomain(mb.domain)) return { ok: true, targets: [{ address, destination: dir.destinationOf(mb.domain), orcpt: `rfc822;${email}` }] };
      const r = dir.resolveLocal(mb, size);
      if (!r.ok) return { ok: false, reason: `${r.refusal.code} ${r.refusal.enhanced} ${r.refusal.text}` };
      return { ok: true, targets: r.targets.map((t) => ({ address: t.address, destination: t.destination, orcpt: `rfc822;${email}` })) };
    });
    if (!this.d.config().suppression.enabled || req.strict) return fates;
    // The suppression list, as at RCPT for relay and submission clients: remote addresses only.
    const remote = fates.flatMap((f) => (f.ok ? f.targets.filter((t) => !t.destination.startsWith('local:')).map((t) => t.address) : []));
    if (remote.length === 0) return fates;
    const listed = await this.d.suppressions.suppressed(remote, this.d.clock());
    return fates.map((f) => {
      if (!f.ok) return f;
      const hit = f.targets.map((t) => ({ t, e: listed.get(suppressionKey(t.address)) })).find((x) => x.e && !x.t.destination.startsWith('local:'));
      if (!hit?.e) return f;
      const r = suppressedReply(hit.t.address, hit.e);
      return { ok: false, reason: `${r.code} ${r.enhanced} ${r.text}` };
    });
  }
}

/** The stored first response of a key, or 422 when this request is not the one it answered. */
function replay(first: IdempotencyRecord, hash: string): InjectResult {
  if (first.bodyHash !== hash) {
    throw new AdminError('unprocessable', 'this Idempotency-Key was used within 24 hours for a different request; use a new key for a new request', 'idempotency_key_reused');
  }
  return { status: first.status, body: JSON.parse(first.response) as InjectResponse, replayed: true, queued: [] };
}
