/**
 * queue/suppression — the suppression list's model and its decisions, pure:
 * what an entry holds, which outcome puts an address on the list (only a
 * permanent failure whose class speaks for the address itself:
 * InvalidRecipient, BadDomain — null MX included — and InactiveMailbox;
 * never quota, policy, reputation, authentication, rate limits, content, nor
 * any 4xx), the reply a suppressed address gets, and the list's CSV form
 * (`halcyon suppression import|export`).
 *
 * The store interface (`SuppressionList`) is implemented beside the other
 * queue parts (sqlite/suppression, pg/suppression): one list in the queue's
 * database, shared by every node. Entries are written by the stores inside
 * the transaction of the failure that caused them (RecipientQueue
 * .recordOutcomes with `suppressUntil`), or by an operator.
 *
 * Does not classify replies (smtp/bounce-rules does) and holds no I/O.
 */
import { parseMailbox } from '../smtp/address.js';
import { type BounceClass, isBounceClass, SUPPRESSING_CLASSES } from '../smtp/bounce-class.js';
import type { LastReply, MessageId } from './model.js';

/** Why an address is on the list: a failure it caused, or an operator's word. */
export type SuppressionSource = 'bounce' | 'admin' | 'import';

export interface SuppressionEntry {
  /** The address as first suppressed; entries are matched by `suppressionKey`. */
  readonly address: string;
  readonly class: BounceClass;
  /** The reply that caused it ("550 5.1.1 User unknown" with its host), or the operator's reason as text. */
  readonly reply: LastReply;
  readonly source: SuppressionSource;
  /** The message whose failure caused it, when one did. */
  readonly queueId?: MessageId;
  /** When it was (last) suppressed, epoch ms. */
  readonly since: number;
  /** It is ignored (and purged) from then on, epoch ms. */
  readonly until: number;
}

export interface SuppressionFilter {
  /** Addresses containing this text (case-insensitive). */
  readonly q?: string;
  readonly limit?: number;
  /** Only entries still in force at this time (omit: all, expired ones too). */
  readonly now?: number;
}

export interface SuppressionList {
  /** Adds or replaces entries (by key): the newest `since` wins. */
  suppress(entries: readonly SuppressionEntry[]): Promise<number>;
  /** The entries in force at `now` for these addresses, by key. */
  suppressed(addresses: readonly string[], now: number): Promise<Map<string, SuppressionEntry>>;
  /** Removes the addresses' entries; returns how many there were. */
  unsuppress(addresses: readonly string[]): Promise<number>;
  /** Entries in address order. */
  listSuppressions(filter: SuppressionFilter): Promise<SuppressionEntry[]>;
  /** Deletes the entries whose `until` is past; returns how many. */
  purgeSuppressions(now: number): Promise<number>;
}

/**
 * The key an address is matched by: the domain lower-cased (DNS is case-blind) and the local part
 * lower-cased too. RFC 5321 leaves local-part case to the receiver, but no provider of note treats
 * "Bob" and "bob" as two mailboxes, and a suppression list that missed "Bob@x" after "bob@x" bounced
 * would defeat its purpose. (Postfix's verify cache and Postal key the same way.)
 */
export function suppressionKey(address: string): string {
  return address.toLowerCase();
}

export interface SuppressionSettings {
  readonly enabled: boolean;
  readonly ttlMs: number;
}

/**
 * Until when a failure suppresses its address, or undefined when it must not: a permanent failure (5xx)
 * whose class speaks for the address. The class is read from the reply, where the classifier put it.
 */
export function suppressionUntil(reply: LastReply, now: number, s: SuppressionSettings): number | undefined {
  if (!s.enabled || s.ttlMs <= 0) return undefined;
  if (reply.code < 500 || reply.code > 599) return undefined;
  if (reply.class === undefined || !SUPPRESSING_CLASSES.has(reply.class)) return undefined;
  return now + s.ttlMs;
}

/** "550 5.1.1 <bob@x>: User unknown" — the reply as the remote said it, one line. */
export function replyLine(r: LastReply): string {
  return `${r.code}${r.enhanced ? ` ${r.enhanced}` : ''} ${r.text}`.replace(/[\r\n]+/g, ' ').trim();
}

/** The date of an entry as the refusal (and `halcyon suppression list`) says it: "2026-12-06T23:40:12Z". */
export const isoSecond = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * What a later RCPT for a suppressed address gets, and what mail already queued for it fails with:
 * `550 5.1.1 <addr>: recipient suppressed since <date>: <original reply>`.
 */
export function suppressedReply(address: string, e: SuppressionEntry): { code: 550; enhanced: '5.1.1'; text: string } {
  return { code: 550, enhanced: '5.1.1', text: `<${address}>: recipient suppressed since ${isoSecond(e.since)}: ${replyLine(e.reply)}` };
}

// ---- CSV (RFC 4180): address,class,since,until,source,queue_id,reply ----

export const CSV_HEADER = ['address', 'class', 'since', 'until', 'source', 'queue_id', 'reply'] as const;

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(entries: readonly SuppressionEntry[]): string {
  const rows = entries.map((e) => [e.address, e.class, new Date(e.since).toISOString(), new Date(e.until).toISOString(), e.source, e.queueId ?? '', replyLine(e.reply)]);
  return [CSV_HEADER.join(','), ...rows.map((r) => r.map(csvField).join(','))].join('\r\n') + '\r\n';
}

/** RFC 4180 records (quoted fields may hold commas, quotes and line breaks). */
function parseRecords(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') { record.push(field); field = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      record.push(field);
      field = '';
      if (record.some((f) => f !== '')) records.push(record);
      record = [];
    } else field += c;
  }
  record.push(field);
  if (record.some((f) => f !== '')) records.push(record);
  return records;
}

/** "550 5.1.1 text" → a LastReply (anything else: a 550 5.1.1 with the text as given). */
export function parseReplyLine(line: string): LastReply {
  const m = /^([245]\d\d)(?:\s+([245]\.\d{1,3}\.\d{1,3}))?\s*(.*)$/s.exec(line.trim());
  if (!m) return { code: 550, enhanced: '5.1.1', text: line.trim() };
  return { code: Number(m[1]), ...(m[2] ? { enhanced: m[2] } : {}), text: m[3] ?? '' };
}

export interface CsvImport {
  readonly entries: SuppressionEntry[];
  /** "line 3: class Foo is not a bounce class" … */
  readonly problems: string[];
}

/**
 * Reads an export (or a hand-made file: only `address` is required; a header row names the columns,
 * otherwise they are in export order). Missing fields: class InvalidRecipient, since `now`, until
 * `now + ttlMs`, source "import". An address smtp/address does not parse (the check `suppression add`
 * makes too) or a class that is no bounce class is refused with its line number; nothing is imported
 * from a file with problems.
 */
export function fromCsv(text: string, now: number, ttlMs: number): CsvImport {
  const records = parseRecords(text);
  const problems: string[] = [];
  const entries: SuppressionEntry[] = [];
  let cols: string[] = [...CSV_HEADER];
  let first = 0;
  if (records[0]?.map((f) => f.trim().toLowerCase()).includes('address')) {
    cols = records[0].map((f) => f.trim().toLowerCase());
    first = 1;
  }
  const at = (r: string[], name: string): string => (cols.indexOf(name) >= 0 ? (r[cols.indexOf(name)] ?? '').trim() : '');
  const time = (s: string, fallback: number, line: number, what: string): number => {
    if (s === '') return fallback;
    const t = Date.parse(s);
    if (Number.isNaN(t)) problems.push(`line ${line}: ${what} "${s}" is not a date`);
    return t;
  };
  for (let i = first; i < records.length; i++) {
    const r = records[i]!;
    const line = i + 1;
    const address = at(r, 'address');
    if ('error' in parseMailbox(address, true)) { problems.push(`line ${line}: "${address}" is not an address`); continue; }
    const cls = at(r, 'class') || 'InvalidRecipient';
    if (!isBounceClass(cls)) { problems.push(`line ${line}: class "${cls}" is not a bounce class`); continue; }
    const since = time(at(r, 'since'), now, line, 'since');
    const until = time(at(r, 'until'), since + ttlMs, line, 'until');
    const source = at(r, 'source');
    const queueId = at(r, 'queue_id');
    const reply = at(r, 'reply');
    entries.push({
      address, class: cls, since, until,
      source: source === 'bounce' || source === 'admin' ? source : 'import',
      ...(queueId ? { queueId } : {}),
      reply: reply ? parseReplyLine(reply) : { code: 550, enhanced: '5.1.1', text: 'imported', ours: true },
    });
  }
  return { entries: problems.length > 0 ? [] : entries, problems };
}

/** The entry a recorded failure makes (the stores call this inside recordOutcomes), or none. */
export function bounceEntry(r: { readonly address: string; readonly message_id: MessageId }, o: { readonly kind: string; readonly reply: LastReply; readonly suppressUntil?: number }, now: number): SuppressionEntry | undefined {
  if (o.kind !== 'failed' || o.suppressUntil === undefined || o.reply.class === undefined) return undefined;
  return { address: r.address, class: o.reply.class, reply: o.reply, source: 'bounce', queueId: r.message_id, since: now, until: o.suppressUntil };
}

/** The columns of a suppression row, in the order `upsertSql('$')` numbers them. */
export const SUPPRESSION_ROW = ['key', 'address', 'class', 'reply', 'source', 'queue_id', 'since', 'until'] as const;

/**
 * The upsert both stores write an entry with: SQLite's named parameters (`@key` …, a suppressionRow) or
 * PostgreSQL's numbered ones ($1 … $8 in SUPPRESSION_ROW order). A newer entry replaces an older one.
 */
export function upsertSql(p: '@' | '$'): string {
  const v = (n: string, i: number): string => (p === '@' ? `@${n}` : `$${i + 1}`);
  return `INSERT INTO suppressions (${SUPPRESSION_ROW.join(', ')})
    VALUES (${SUPPRESSION_ROW.map(v).join(', ')})
    ON CONFLICT (key) DO UPDATE SET address = excluded.address, class = excluded.class, reply = excluded.reply,
      source = excluded.source, queue_id = excluded.queue_id, since = excluded.since, until = excluded.until
    WHERE excluded.since >= suppressions.since`;
}
