/**
 * bench/transactions — how many SMTP transactions one 10-recipient message
 * costs at a difficult remote, for Halcyon and for a sending Postfix. The
 * remote is a private Postfix (virtual Maildirs r0..r9@example.test) that
 * either answers `552 5.2.2 Mailbox full` to r0 or enforces
 * smtpd_recipient_limit = 3. Transactions are counted from the remote's qmgr
 * lines (one per queued transaction, with nrcpt=) for our sender; the wait is
 * bounded, and what happened by then is reported.
 *
 * It counts; it does not judge which behaviour is right.
 */
import { sendOne } from './latency.js';
import { startHalcyon } from './halcyon.js';
import { startPostfix, type BenchPostfix } from './postfix.js';
import { pollUntil } from './procs.js';

export type RemoteKind = '552-first' | 'limit-3';

export interface TransactionResult {
  readonly transactions: number;
  /** Recipients the remote queued (sum of nrcpt). */
  readonly delivered: number;
  /** Free text: the sender's own view of the recipients' fates, where it has one. */
  readonly fates: string;
}

const SENDER = 'from@sender.test';
const RCPTS = Array.from({ length: 10 }, (_, i) => `r${i}@example.test`);

async function remote(kind: RemoteKind): Promise<BenchPostfix> {
  return startPostfix({
    mailboxes: RCPTS.map((r) => r.split('@')[0]!),
    ...(kind === 'limit-3' ? { recipientLimit: 3 } : { accessTable: { 'r0@example.test': '552 5.2.2 Mailbox full' } }),
  });
}

function counted(peer: BenchPostfix): { transactions: number; delivered: number } {
  const mine = peer.transactions().filter((t) => t.from === SENDER);
  return { transactions: mine.length, delivered: mine.reduce((s, t) => s + t.nrcpt, 0) };
}

/** Last status= per test recipient in a Postfix maillog, tallied ("sent 9, bounced 1"); the bounce to the sender is left out. */
function postfixFates(log: string): string {
  const last = new Map<string, string>();
  for (const m of log.matchAll(/ to=<(r\d@example\.test)>.*? status=(\w+)/g)) last.set(m[1]!, m[2]!);
  const tally = new Map<string, number>();
  for (const s of last.values()) tally.set(s, (tally.get(s) ?? 0) + 1);
  return [...tally].map(([s, n]) => `${s} ${n}`).join(', ') || 'no status yet';
}

export async function transactionsHalcyon(kind: RemoteKind, windowMs: number): Promise<TransactionResult> {
  const peer = await remote(kind);
  try {
    const h = await startHalcyon({ routeTo: peer.port });
    try {
      const sent = await sendOne(h.port, SENDER, RCPTS);
      const expect = kind === 'limit-3' ? 10 : 9;
      await pollUntil(() => counted(peer).delivered >= expect, Date.now() + windowMs, 100);
      // A little longer, to see any extra transaction beyond the expected ones.
      await new Promise((r) => setTimeout(r, 1_000));
      const c = counted(peer);
      return { ...c, fates: `accepted with ${sent.code}; remote queued ${c.delivered}/10` };
    } finally {
      await h.stop();
    }
  } finally {
    await peer.stop();
  }
}

export async function transactionsPostfix(kind: RemoteKind, windowMs: number): Promise<TransactionResult> {
  const peer = await remote(kind);
  try {
    const sender = await startPostfix({ relayTo: peer.port });
    try {
      const sent = await sendOne(sender.port, SENDER, RCPTS);
      const expect = kind === 'limit-3' ? 10 : 9;
      await pollUntil(() => counted(peer).delivered >= expect, Date.now() + windowMs, 100);
      await new Promise((r) => setTimeout(r, 1_000));
      const c = counted(peer);
      return { ...c, fates: `accepted with ${sent.code}; remote queued ${c.delivered}/10; Postfix says: ${postfixFates(sender.maillog())}` };
    } finally {
      await sender.stop();
    }
  } finally {
    await peer.stop();
  }
}
