/**
 * Tests for delivery/transaction and delivery/rcpt-table: one test per row of
 * spec/outbound-replies.md (named after the row), the enhanced-code rules, the
 * 552 policy, pipelining, the I3/I4 scenarios and fast-check properties.
 * Drives the reducer through a tiny in-memory remote; no sockets.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ReplyParser, type Reply } from '../smtp/reply.js';
import {
  classifyRcptReply,
  nextAction,
  onDataReply,
  onEndOfData,
  onLmtpReply,
  onMailReply,
  onNoReply,
  onReply,
  onRcptReply,
  onChunkReply,
  beginChunks,
  outcomes,
  outstandingRcpts,
  sendData,
  sendRcpts,
  shouldSendData,
  startTransaction,
  TransactionError,
  type FinalVerdict,
  type MailboxPolicy,
  type TxOutcomes,
  type TxState,
} from './transaction.js';

/** "552 5.2.2 Mailbox full" → Reply, parsed as the client would. */
function R(line: string): Reply {
  const out = new ReplyParser().push(`${line}\r\n`);
  assert.equal(out.length, 1);
  return out[0]!;
}
const OK = R('250 2.1.5 OK');
const PERMANENT: MailboxPolicy = { mailboxFull: 'permanent' };
const TRANSIENT: MailboxPolicy = { mailboxFull: 'transient' };

/** A remote as the driver sees it; `undefined` = the connection drops instead of replying. */
interface Remote {
  mail?: () => Reply | undefined;
  rcpt: (id: number, nthInTx: number) => Reply | undefined;
  data?: () => Reply | undefined;
  eod?: () => Reply | undefined;
  /** LMTP: the end-of-data replies, one per accepted recipient in order; undefined = the connection drops there. */
  lmtpEod?: ReadonlyArray<string | undefined>;
}

interface Run {
  s: TxState;
  out: TxOutcomes;
  rcptsSent: number[];
  rcptReplies: Map<number, Reply>;
  dataSent: boolean;
}

/** The driving loop from transaction.ts's header, against an in-memory remote. */
function run(ids: number[], remote: Remote, opts: { pipelining?: boolean; window?: number; policy?: MailboxPolicy; lmtp?: boolean } = {}): Run {
  let s = startTransaction(ids, opts.policy ?? PERMANENT, opts.lmtp ? 'lmtp' : 'smtp');
  const queue: Array<Reply | undefined> = [];
  let dropped = false;
  const write = (reply: Reply | undefined): void => {
    if (dropped) return;
    queue.push(reply);
    if (!reply) dropped = true;
  };
  const rcptsSent: number[] = [];
  const rcptReplies = new Map<number, Reply>();
  const sendRcpt = (id: number): void => {
    const r = remote.rcpt(id, rcptsSent.length);
    rcptsSent.push(id);
    if (r && !dropped) rcptReplies.set(id, r);
    write(r);
  };
  let dataSent = false;
  write(remote.mail ? remote.mail() : OK);
  for (let step = 0; step < 4 * ids.length + 8; step++) {
    if (opts.pipelining) {
      const r = sendRcpts(s, (opts.window ?? Infinity) - outstandingRcpts(s));
      s = r.state;
      r.ids.forEach(sendRcpt);
    }
    const a = nextAction(s);
    if (a.kind === 'send-rcpt') {
      const r = sendRcpts(s, 1);
      s = r.state;
      r.ids.forEach(sendRcpt);
    } else if (a.kind === 'read') {
      const r = queue.shift();
      s = r ? onReply(s, r) : onNoReply(s, 'timeout');
    } else if (a.kind === 'send-data') {
      s = sendData(s);
      dataSent = true;
      write(remote.data ? remote.data() : R('354 go ahead'));
    } else if (a.kind === 'send-content' && opts.lmtp) {
      for (const line of remote.lmtpEod ?? []) write(line === undefined ? undefined : R(line));
      s = onEndOfData(s, queue.shift());
    } else if (a.kind === 'send-content') {
      const r = dropped ? undefined : remote.eod ? remote.eod() : R('250 2.0.0 queued');
      s = onEndOfData(s, r);
    } else break;
  }
  return { s, out: outcomes(s), rcptsSent, rcptReplies, dataSent };
}

/** Transactions until nothing is limit-deferred (I3); a fresh remote transaction each time. */
function runAll(ids: number[], remote: Remote & { newTx?: () => void }, opts: { pipelining?: boolean; policy?: MailboxPolicy } = {}) {
  const all = new Map<number, FinalVerdict>();
  const runs: Run[] = [];
  let todo = ids;
  for (let t = 0; t <= ids.length && todo.length > 0; t++) {
    remote.newTx?.();
    const r = run(todo, remote, opts);
    runs.push(r);
    for (const [id, v] of r.out.perRecipient) all.set(id, v);
    todo = [...r.out.limitDeferred];
  }
  return { all, runs, todo };
}

const ids = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);
const kinds = (out: TxOutcomes): Record<string, number[]> => {
  const k: Record<string, number[]> = {};
  for (const [id, v] of out.perRecipient) (k[v.kind] ??= []).push(id);
  if (out.limitDeferred.length) k['limit-deferred'] = [...out.limitDeferred];
  return k;
};
/** Replies by position in the transaction; past the end, 250. */
const byPosition = (...lines: Array<string | undefined>): Remote => ({
  rcpt: (_id, n) => (n < lines.length ? (lines[n] === undefined ? undefined : R(lines[n]!)) : OK),
});
const limitRemote = (k: number, line: string): Remote & { newTx: () => void } => {
  let taken = 0;
  return {
    newTx: () => { taken = 0; },
    rcpt: () => (taken < k ? (taken++, OK) : R(line)),
  };
};

describe('RCPT table (no enhanced code)', () => {
  test('RCPT table: 2xx with A = 0 → accepted', () => {
    assert.equal(classifyRcptReply(R('250 OK'), 0, PERMANENT).verdict.kind, 'accepted');
    assert.equal(classifyRcptReply(R('251 will forward'), 0, PERMANENT).verdict.kind, 'accepted');
  });
  test('RCPT table: 2xx with A ≥ 1 → accepted', () => {
    assert.deepEqual(kinds(run(ids(3), byPosition('250 a', '250 b', '252 c'), { pipelining: true }).out), { delivered: [1, 2, 3] });
  });
  test('RCPT table: 552 with A = 0 → this recipient failed, continue', () => {
    const r = run(ids(3), byPosition('552 Mailbox full'));
    assert.deepEqual(kinds(r.out), { failed: [1], delivered: [2, 3] });
    assert.deepEqual(r.rcptsSent, [1, 2, 3]);
    assert.equal(r.out.perRecipient.get(1)!.command, 'RCPT TO');
  });
  test('RCPT table: 552 with A ≥ 1 → recipient limit: this and every not-yet-answered recipient limit-deferred, no more RCPT', () => {
    const r = run(ids(5), byPosition('250 ok', '552 Too many recipients'));
    assert.deepEqual(kinds(r.out), { delivered: [1], 'limit-deferred': [2, 3, 4, 5] });
    assert.deepEqual(r.rcptsSent, [1, 2]);
  });
  test('RCPT table: 452 with A = 0 → this recipient deferred (backoff), continue', () => {
    const r = run(ids(3), byPosition('452 try later'));
    assert.deepEqual(kinds(r.out), { deferred: [1], delivered: [2, 3] });
    assert.equal(r.out.perRecipient.get(1)!.connectionLevel, false);
  });
  test('RCPT table: 452 with A ≥ 1 → recipient limit reached, as for 552', () => {
    const r = run(ids(4), byPosition('250 ok', '250 ok', '452 Too many recipients'));
    assert.deepEqual(kinds(r.out), { delivered: [1, 2], 'limit-deferred': [3, 4] });
    assert.deepEqual(r.rcptsSent, [1, 2, 3]);
  });
  test('RCPT table: other 4xx (450, 451) with A = 0 → this recipient deferred, continue', () => {
    assert.deepEqual(kinds(run(ids(3), byPosition('450 busy', '451 local error')).out), { deferred: [1, 2], delivered: [3] });
  });
  test('RCPT table: other 4xx (450, 451) with A ≥ 1 → same (deferred, continue)', () => {
    const r = run(ids(4), byPosition('250 ok', '450 busy', '451 error'));
    assert.deepEqual(kinds(r.out), { delivered: [1, 4], deferred: [2, 3] });
  });
  test('RCPT table: 421 with A = 0 → transaction over, every recipient deferred, connection-level failure', () => {
    const r = run(ids(3), byPosition('421 closing'));
    assert.deepEqual(kinds(r.out), { deferred: [1, 2, 3] });
    assert.equal(r.out.connectionFailure?.reply?.code, 421);
    assert.ok([...r.out.perRecipient.values()].every((v) => v.connectionLevel));
    assert.deepEqual(r.rcptsSent, [1]);
    assert.equal(nextAction(r.s).kind, 'close');
  });
  test('RCPT table: 421 with A ≥ 1 → accepted recipients are NOT delivered (no DATA) and deferred with the rest', () => {
    const r = run(ids(4), byPosition('250 ok', '250 ok', '421 closing'));
    assert.deepEqual(kinds(r.out), { deferred: [1, 2, 3, 4] });
    assert.equal(r.dataSent, false);
    assert.equal(r.out.perRecipient.get(1)!.reply?.code, 421);
  });
  for (const code of [550, 551, 553, 554, 555]) {
    test(`RCPT table: other 5xx (${code}) with A = 0 → this recipient failed permanently, continue`, () => {
      assert.deepEqual(kinds(run(ids(2), byPosition(`${code} no`)).out), { failed: [1], delivered: [2] });
    });
    test(`RCPT table: other 5xx (${code}) with A ≥ 1 → same (failed, continue)`, () => {
      assert.deepEqual(kinds(run(ids(3), byPosition('250 ok', `${code} no`)).out), { delivered: [1, 3], failed: [2] });
    });
  }
  test('RCPT table: no reply with A = 0 → all unanswered recipients deferred, destination records a failure', () => {
    const r = run(ids(3), byPosition(undefined));
    assert.deepEqual(kinds(r.out), { deferred: [1, 2, 3] });
    assert.equal(r.out.connectionFailure?.lost, 'timeout');
    assert.equal(r.out.perRecipient.get(1)!.reply, undefined);
  });
  test('RCPT table: no reply with A ≥ 1 → same; the accepted ones are deferred too (no DATA happened)', () => {
    const r = run(ids(3), byPosition('250 ok', '550 no', undefined));
    assert.deepEqual(kinds(r.out), { deferred: [1, 3], failed: [2] });
    assert.ok(r.out.connectionFailure);
    assert.equal(r.dataSent, false);
  });
});

describe('enhanced status codes decide first', () => {
  test('enhanced: X.5.3 with A ≥ 1 → recipient limit reached (rule 3), whatever the basic code', () => {
    for (const line of ['452 4.5.3 Too many recipients', '552 5.5.3 Too many recipients', '550 5.5.3 Too many']) {
      assert.deepEqual(kinds(run(ids(3), byPosition('250 ok', line)).out), { delivered: [1], 'limit-deferred': [2, 3] }, line);
    }
  });
  test('enhanced: X.5.3 with A = 0 → this recipient deferred with backoff, never limit-deferred', () => {
    for (const line of ['452 4.5.3 Too many recipients', '552 5.5.3 Too many recipients']) {
      const r = run(ids(3), byPosition(line));
      assert.deepEqual(kinds(r.out), { deferred: [1], delivered: [2, 3] }, line);
    }
  });
  test('enhanced: X.2.2 → per-mailbox result for that recipient alone, whatever A is; continue', () => {
    assert.deepEqual(kinds(run(ids(3), byPosition('552 5.2.2 Mailbox full')).out), { failed: [1], delivered: [2, 3] });
    const r = run(ids(3), byPosition('250 ok', '552 5.2.2 Mailbox full'));
    assert.deepEqual(kinds(r.out), { delivered: [1, 3], failed: [2] });
    assert.deepEqual(r.rcptsSent, [1, 2, 3]);
    assert.deepEqual(kinds(run(ids(2), byPosition('250 ok', '452 4.2.2 Over quota')).out), { delivered: [1], deferred: [2] });
  });
  test('enhanced: any other enhanced code → the recipient\'s own result by its class', () => {
    // These would be a limit by the basic-code table; the enhanced code says otherwise.
    assert.deepEqual(kinds(run(ids(3), byPosition('250 ok', '552 5.1.1 No such user')).out), { delivered: [1, 3], failed: [2] });
    assert.deepEqual(kinds(run(ids(3), byPosition('250 ok', '452 4.3.1 Out of memory')).out), { delivered: [1, 3], deferred: [2] });
    assert.deepEqual(kinds(run(ids(2), byPosition('550 5.7.1 Relaying denied', '451 4.7.1 Greylisted')).out), { failed: [1], deferred: [2] });
  });
  test('enhanced: a code whose class does not match the reply is ignored → the table decides', () => {
    // "552 4.5.3" is not a valid enhanced code for a 5xx: bare 552 with A ≥ 1 → limit; with A = 0 → failed.
    assert.equal(classifyRcptReply({ code: 552, enhanced: '4.5.3', lines: ['x'] }, 0, PERMANENT).verdict.kind, 'failed');
    assert.equal(classifyRcptReply({ code: 552, enhanced: '4.5.3', lines: ['x'] }, 1, PERMANENT).rule, '552 A>=1');
    assert.equal(R('552 4.2.2 full').enhanced, undefined);
  });
  test('enhanced: 421 with an enhanced code is still 421 (the server closes the connection)', () => {
    const d = classifyRcptReply(R('421 4.5.3 too many, bye'), 2, PERMANENT);
    assert.deepEqual([d.verdict.kind, d.connectionLevel, d.stopRcpt], ['deferred', true, true]);
  });
});

describe('per-mailbox 552 policy (delivery.mailbox_full)', () => {
  test('policy permanent (default): 552 5.2.2 → failed, one DSN for that recipient only', () => {
    assert.deepEqual(kinds(run(ids(2), byPosition('552 5.2.2 full'), { policy: PERMANENT }).out), { failed: [1], delivered: [2] });
  });
  test('policy transient: 552 5.2.2 → deferred with backoff, never an immediate resend', () => {
    const r = run(ids(3), byPosition('250 ok', '552 5.2.2 full'), { policy: TRANSIENT });
    assert.deepEqual(kinds(r.out), { delivered: [1, 3], deferred: [2] });
    assert.deepEqual(r.out.limitDeferred, []);
  });
  test('policy transient leaves other 552s alone (bare 552 with A = 0 → failed, 552 5.1.1 → failed)', () => {
    assert.deepEqual(kinds(run(ids(2), byPosition('552 full', '552 5.1.1 unknown'), { policy: TRANSIENT }).out), { failed: [1, 2] });
  });
});

describe('replies after the recipients', () => {
  test('after RCPT: no recipient accepted → no DATA; RSET (connection may be reused)', () => {
    const r = run(ids(2), byPosition('550 no', '452 later'));
    assert.equal(r.dataSent, false);
    assert.equal(shouldSendData(r.s), false);
    assert.deepEqual(nextAction(r.s), { kind: 'done', rsetFirst: true });
  });
  test('after RCPT: DATA 354 → send the content', () => {
    let s = onRcptReply(onMailReply(sendRcpts(startTransaction([7]), 1).state, OK), OK);
    s = onDataReply(sendData(s), R('354 go'));
    assert.deepEqual(nextAction(s), { kind: 'send-content', via: 'DATA' });
  });
  test('after RCPT: DATA 4xx → accepted recipients deferred', () => {
    const r = run(ids(3), { ...byPosition('250', '550 no'), data: () => R('451 4.3.0 later') });
    assert.deepEqual(kinds(r.out), { deferred: [1, 3], failed: [2] });
    assert.equal(r.out.perRecipient.get(1)!.command, 'DATA');
    assert.equal(r.out.connectionFailure, undefined);
  });
  test('after RCPT: DATA 5xx → accepted recipients failed → DSN', () => {
    assert.deepEqual(kinds(run(ids(2), { ...byPosition(), data: () => R('554 5.6.0 no') }).out), { failed: [1, 2] });
  });
  test('after RCPT: end of data 2xx → accepted recipients delivered', () => {
    const r = run(ids(2), byPosition());
    assert.deepEqual(kinds(r.out), { delivered: [1, 2] });
    assert.equal(r.out.perRecipient.get(2)!.command, 'end of DATA');
    assert.deepEqual(nextAction(r.s), { kind: 'done', rsetFirst: false });
  });
  test('after RCPT: end of data 4xx → accepted recipients deferred', () => {
    assert.deepEqual(kinds(run(ids(2), { ...byPosition(), eod: () => R('452 4.3.1 full') }).out), { deferred: [1, 2] });
  });
  test('after RCPT: end of data 5xx → accepted recipients failed → DSN', () => {
    assert.deepEqual(kinds(run(ids(2), { ...byPosition(), eod: () => R('554 5.7.1 spam') }).out), { failed: [1, 2] });
  });
  test('after RCPT: end of data no reply → accepted deferred, marked possible duplicate, never dropped', () => {
    const r = run(ids(3), { ...byPosition('250', '550 no'), eod: () => undefined });
    assert.deepEqual(kinds(r.out), { deferred: [1, 3], failed: [2] });
    assert.equal(r.out.possibleDuplicate, true);
    assert.equal(r.out.perRecipient.get(1)!.possibleDuplicate, true);
    assert.equal(r.out.perRecipient.get(2)!.possibleDuplicate, false);
  });
  test('MAIL FROM: 2xx → go on; 4xx → all deferred; 5xx → all failed; 421 → all deferred, connection-level', () => {
    assert.deepEqual(kinds(run(ids(2), { ...byPosition(), mail: () => R('250 ok') }).out), { delivered: [1, 2] });
    const d = run(ids(2), { ...byPosition(), mail: () => R('451 4.7.1 later') });
    assert.deepEqual([kinds(d.out), d.out.connectionFailure, d.rcptsSent], [{ deferred: [1, 2] }, undefined, []]);
    const f = run(ids(2), { ...byPosition(), mail: () => R('553 5.1.7 bad sender') }, { pipelining: true });
    assert.deepEqual(kinds(f.out), { failed: [1, 2] });
    assert.equal(f.out.perRecipient.get(1)!.command, 'MAIL FROM');
    const c = run(ids(2), { ...byPosition(), mail: () => R('421 bye') });
    assert.deepEqual(kinds(c.out), { deferred: [1, 2] });
    assert.equal(c.out.connectionFailure?.command, 'MAIL FROM');
  });
  test('BDAT: a refused chunk ends the transaction like a refused DATA; the last chunk is end of data', () => {
    let s = onRcptReply(onMailReply(sendRcpts(startTransaction([1]), 1).state, OK), OK);
    s = onChunkReply(beginChunks(s), R('250 2.0.0 chunk ok'));
    assert.equal(onEndOfData(s, R('250 done')).phase, 'settled');
    assert.deepEqual(kinds(outcomes(onChunkReply(s, R('552 5.3.4 too big')))), { failed: [1] });
  });
});

describe('LMTP: one end-of-data reply per accepted recipient, each applied to its own recipient by the same table', () => {
  const lmtp = { lmtp: true, pipelining: true };
  test('LMTP end of data: 2xx for every accepted recipient → each delivered; the connection is ready (no RSET)', () => {
    const r = run(ids(3), { ...byPosition(), lmtpEod: ['250 2.0.0 <1> Saved', '250 2.0.0 <2> Saved', '250 2.0.0 <3> Saved'] }, lmtp);
    assert.deepEqual(kinds(r.out), { delivered: [1, 2, 3] });
    assert.deepEqual(nextAction(r.s), { kind: 'done', rsetFirst: false });
  });
  test('LMTP end of data: 552 5.2.2 for one recipient → that recipient failed (DSN), the others delivered', () => {
    const r = run(ids(5), { ...byPosition(), lmtpEod: ['250 ok', '250 ok', '552 5.2.2 <3> Quota exceeded', '250 ok', '250 ok'] }, lmtp);
    assert.deepEqual(kinds(r.out), { delivered: [1, 2, 4, 5], failed: [3] });
    assert.equal(r.out.perRecipient.get(3)!.command, 'end of DATA');
    assert.equal(r.out.perRecipient.get(3)!.reply?.enhanced, '5.2.2');
    assert.equal(r.out.connectionFailure, undefined);
  });
  test('LMTP end of data: 452 4.2.2 for one recipient → that recipient deferred alone, not connection-level', () => {
    const r = run(ids(3), { ...byPosition(), lmtpEod: ['250 ok', '452 4.2.2 <2> Quota exceeded', '250 ok'] }, lmtp);
    assert.deepEqual(kinds(r.out), { delivered: [1, 3], deferred: [2] });
    assert.equal(r.out.perRecipient.get(2)!.connectionLevel, false);
    assert.equal(r.out.perRecipient.get(2)!.possibleDuplicate, false);
  });
  test('LMTP end of data: 552 5.2.2 with policy transient → deferred, as at RCPT', () => {
    const r = run(ids(2), { ...byPosition(), lmtpEod: ['552 5.2.2 full', '250 ok'] }, { ...lmtp, policy: TRANSIENT });
    assert.deepEqual(kinds(r.out), { deferred: [1], delivered: [2] });
  });
  test('LMTP end of data: other 5xx → failed; other 4xx → deferred, each for its recipient only', () => {
    const r = run(ids(3), { ...byPosition(), lmtpEod: ['550 5.1.1 <1> gone', '451 4.3.0 <2> later', '250 ok'] }, lmtp);
    assert.deepEqual(kinds(r.out), { failed: [1], deferred: [2], delivered: [3] });
  });
  test('LMTP RCPT table: a recipient refused at RCPT (552 5.2.2, quota checked at RCPT) gets no end-of-data reply', () => {
    const r = run(ids(3), { ...byPosition('250 ok', '552 5.2.2 <2> Quota exceeded'), lmtpEod: ['250 ok', '250 ok'] }, lmtp);
    assert.deepEqual(kinds(r.out), { delivered: [1, 3], failed: [2] });
    assert.equal(r.out.perRecipient.get(2)!.command, 'RCPT TO');
  });
  test('LMTP end of data: no reply part-way → answered recipients keep their verdicts; the waiting ones deferred, possible duplicates', () => {
    const r = run(ids(3), { ...byPosition(), lmtpEod: ['250 ok', undefined] }, lmtp);
    assert.deepEqual(kinds(r.out), { delivered: [1], deferred: [2, 3] });
    assert.equal(r.out.perRecipient.get(1)!.possibleDuplicate, false);
    assert.equal(r.out.perRecipient.get(2)!.possibleDuplicate, true);
    assert.equal(r.out.perRecipient.get(3)!.command, 'end of DATA');
    assert.equal(r.out.possibleDuplicate, true);
    assert.ok(r.out.connectionFailure, 'the destination records the failure');
  });
  test('LMTP end of data: 421 for one recipient → it and the rest deferred, connection-level; the earlier ones delivered', () => {
    const r = run(ids(3), { ...byPosition(), lmtpEod: ['250 ok', '421 4.3.2 shutting down'] }, lmtp);
    assert.deepEqual(kinds(r.out), { delivered: [1], deferred: [2, 3] });
    assert.equal(r.out.perRecipient.get(2)!.connectionLevel, true);
    assert.deepEqual(nextAction(r.s), { kind: 'close' });
  });
  test('LMTP: after the first end-of-data reply the next action is to read the next one, never to resend', () => {
    let s = sendRcpts(startTransaction([1, 2], PERMANENT, 'lmtp'), 2).state;
    s = onRcptReply(onRcptReply(onMailReply(s, OK), OK), OK);
    s = onDataReply(sendData(s), R('354 go'));
    assert.deepEqual(nextAction(s), { kind: 'send-content', via: 'DATA' });
    s = onEndOfData(s, R('250 2.0.0 <1> Saved'));
    assert.deepEqual(nextAction(s), { kind: 'read', command: 'end of DATA' });
    s = onReply(s, R('250 2.0.0 <2> Saved'));
    assert.deepEqual(kinds(outcomes(s)), { delivered: [1, 2] });
  });
  test('LMTP + BDAT: chunk replies are per transaction; the last chunk gets one reply per accepted recipient', () => {
    let s = sendRcpts(startTransaction([1, 2], PERMANENT, 'lmtp'), 2).state;
    s = onRcptReply(onRcptReply(onMailReply(s, OK), OK), OK);
    s = onChunkReply(beginChunks(s), R('250 2.0.0 chunk ok'));
    s = onEndOfData(s, R('552 5.2.2 <1> full'));
    s = onReply(s, R('250 2.0.0 <2> Saved'));
    assert.deepEqual(kinds(outcomes(s)), { failed: [1], delivered: [2] });
  });
  test('SMTP mode is unchanged: one end-of-data reply decides every accepted recipient', () => {
    assert.deepEqual(kinds(run(ids(3), { ...byPosition(), eod: () => R('250 ok') }).out), { delivered: [1, 2, 3] });
  });
});

describe('pipelining', () => {
  test('pipelining: a limit reply followed by 250 for an RCPT already pipelined → that one accepted, not resent', () => {
    const r = run(ids(6), byPosition('250 a', '452 4.5.3 Too many', '250 b', '550 no'), { pipelining: true, window: 4 });
    // Window of 4 sliding: reading the first 250 let RCPT 5 out before the limit reply was read,
    // so 3 and 5 get their own replies (250 → accepted); only 6, never sent, is limit-deferred with 2.
    assert.deepEqual(kinds(r.out), { delivered: [1, 3, 5], failed: [4], 'limit-deferred': [2, 6] });
    assert.deepEqual(r.rcptsSent, [1, 2, 3, 4, 5]); // nothing after the limit reply was read
  });
  test('pipelining: 421 in the middle of a batch → every recipient deferred, nothing delivered', () => {
    const r = run(ids(6), byPosition('250', '250', '421 4.3.2 shutting down', '250'), { pipelining: true });
    assert.deepEqual(kinds(r.out), { deferred: [1, 2, 3, 4, 5, 6] });
    assert.equal(r.dataSent, false);
  });
  test('pipelining: a timeout in the middle → answered keep their own verdicts, the rest deferred', () => {
    const r = run(ids(5), byPosition('250', '550 no', undefined), { pipelining: true });
    assert.deepEqual(kinds(r.out), { deferred: [1, 3, 4, 5], failed: [2] });
    assert.equal(r.out.connectionFailure?.command, 'RCPT TO');
  });
  test('pipelining: RCPT replies after a refused MAIL FROM are read and ignored', () => {
    let s = sendRcpts(startTransaction([1, 2]), 10).state;
    s = onMailReply(s, R('550 5.7.1 no'));
    assert.deepEqual(nextAction(s), { kind: 'read', command: 'RCPT TO' });
    s = onRcptReply(onRcptReply(s, R('503 5.5.1 need MAIL')), R('503 5.5.1 need MAIL'));
    assert.deepEqual(nextAction(s), { kind: 'done', rsetFirst: true });
    assert.deepEqual(kinds(outcomes(s)), { failed: [1, 2] });
  });
});

describe('scenarios from the spec', () => {
  test('I4: 10 recipients, 552 5.2.2 for the first only → one transaction, 9 delivered, 1 failed', () => {
    const { all, runs } = runAll(ids(10), { rcpt: (id) => (id === 1 ? R('552 5.2.2 Mailbox full') : OK) }, { pipelining: true });
    assert.equal(runs.length, 1);
    assert.deepEqual(kinds({ perRecipient: all, limitDeferred: [], possibleDuplicate: false }), { failed: [1], delivered: ids(10).slice(1) });
  });
  test('I4: same with a bare 552 (no enhanced code)', () => {
    const { all, runs } = runAll(ids(10), { rcpt: (id) => (id === 1 ? R('552 Mailbox full') : OK) });
    assert.equal(runs.length, 1);
    assert.deepEqual(kinds({ perRecipient: all, limitDeferred: [], possibleDuplicate: false }), { failed: [1], delivered: ids(10).slice(1) });
  });
  for (const line of ['552 Too many recipients', '452 4.5.3 Too many recipients', '452 Too many recipients']) {
    test(`I3: limit K=3 with '${line}' → 3 accepted + 7 limit-deferred, then ⌈10/3⌉ = 4 transactions, no failure`, () => {
      const remote = limitRemote(3, line);
      const { all, runs, todo } = runAll(ids(10), remote, { pipelining: true });
      assert.deepEqual(kinds(runs[0]!.out), { delivered: [1, 2, 3], 'limit-deferred': [4, 5, 6, 7, 8, 9, 10] });
      assert.equal(runs.length, 4);
      assert.deepEqual(todo, []);
      assert.ok([...all.values()].every((v) => v.kind === 'delivered'));
      const sent = runs.flatMap((r) => r.rcptsSent.filter((id) => r.rcptReplies.get(id)?.code === 250));
      assert.equal(new Set(sent).size, sent.length, 'no accepted recipient is sent again');
    });
  }
});

describe('misuse is explicit', () => {
  test('a reply with no outstanding command → TransactionError TX_NO_OUTSTANDING_COMMAND', () => {
    const s = onMailReply(startTransaction([1]), OK);
    assert.throws(() => onRcptReply(s, OK), (e: unknown) => e instanceof TransactionError && e.code === 'TX_NO_OUTSTANDING_COMMAND');
    assert.throws(() => onReply(s, OK), TransactionError);
  });
  test('outcomes before settlement, an empty batch or duplicate ids → TransactionError', () => {
    assert.throws(() => outcomes(startTransaction([1])), (e: unknown) => e instanceof TransactionError && e.code === 'TX_NOT_SETTLED');
    assert.throws(() => startTransaction([]), TransactionError);
    assert.throws(() => startTransaction([1, 1]), TransactionError);
  });
  test('DATA before every RCPT is answered is refused', () => {
    const s = onMailReply(sendRcpts(startTransaction([1, 2]), 2).state, OK);
    assert.throws(() => sendData(onRcptReply(s, OK)), TransactionError);
  });
});

describe('properties', () => {
  const pool = [
    '250 ok', '251 fwd', '552 full', '552 5.2.2 full', '552 5.5.3 many', '452 later', '452 4.5.3 many', '452 4.2.2 quota',
    '450 busy', '451 4.3.0 err', '421 bye', '550 no', '553 5.1.3 bad', '552 5.1.1 unknown', '354 what', 'garbage',
  ];
  const replyArb = fc.option(fc.constantFrom(...pool), { nil: undefined, freq: 12 });
  const scenario = fc.record({
    n: fc.integer({ min: 1, max: 12 }),
    rcpt: fc.array(replyArb, { minLength: 1, maxLength: 14 }),
    mail: fc.constantFrom('250 ok', '250 ok', '250 ok', '451 later', '550 no', '421 bye'),
    data: fc.option(fc.constantFrom('354 go', '354 go', '451 later', '554 no', '421 bye'), { nil: undefined, freq: 8 }),
    eod: fc.option(fc.constantFrom('250 ok', '250 ok', '451 later', '554 no', '421 bye'), { nil: undefined, freq: 8 }),
    pipelining: fc.boolean(),
    window: fc.integer({ min: 1, max: 12 }),
    transient: fc.boolean(),
  });
  const toReply = (l: string | undefined): Reply | undefined => (l === undefined ? undefined : R(l === 'garbage' ? 'xx garbage' : l));

  test('property: every recipient gets exactly one verdict or is limit-deferred; never both accepted and resent; limit only when A ≥ 1', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const remote: Remote = {
          mail: () => toReply(sc.mail),
          rcpt: (_id, k) => toReply(sc.rcpt[k % sc.rcpt.length]),
          data: () => toReply(sc.data),
          eod: () => toReply(sc.eod),
        };
        const r = run(ids(sc.n), remote, { pipelining: sc.pipelining, window: sc.window, policy: sc.transient ? TRANSIENT : PERMANENT });
        const { perRecipient, limitDeferred } = r.out;
        for (const id of ids(sc.n)) {
          assert.equal(Number(perRecipient.has(id)) + limitDeferred.filter((x) => x === id).length, 1, `recipient ${id}`);
        }
        assert.equal(perRecipient.size + limitDeferred.length, sc.n);
        assert.equal(new Set(r.rcptsSent).size, r.rcptsSent.length, 'no RCPT sent twice in a transaction');
        for (const id of limitDeferred) {
          const got = r.rcptReplies.get(id);
          assert.ok(!got || got.code >= 400, 'a recipient the server took is never limit-deferred');
        }
        if (limitDeferred.length > 0) {
          const acceptedSomeone = [...r.rcptReplies.values()].some((x) => x.code >= 200 && x.code < 300);
          assert.ok(acceptedSomeone, 'limit-deferred only when A ≥ 1');
          assert.equal(r.dataSent, true, 'the accepted ones got the message in this transaction');
        }
        for (const [id, v] of perRecipient) {
          if (v.kind === 'delivered') assert.equal(r.rcptReplies.get(id)!.code >= 200 && r.rcptReplies.get(id)!.code < 300, true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('property (I1/I3 at the reducer): repeated transactions never resend a delivered recipient and end within N transactions', () => {
    fc.assert(
      fc.property(scenario, fc.integer({ min: 1, max: 5 }), (sc, k) => {
        let taken = 0;
        let calls = 0;
        const remote = {
          newTx: () => { taken = 0; },
          mail: () => OK,
          rcpt: (): Reply | undefined => {
            const l = sc.rcpt[calls++ % sc.rcpt.length];
            if (l !== undefined && /^2/.test(l)) return taken < k ? (taken++, R(l)) : R('452 4.5.3 Too many recipients');
            return toReply(l);
          },
          eod: () => toReply(sc.eod),
        };
        const { runs, todo } = runAll(ids(sc.n), remote, { pipelining: sc.pipelining });
        assert.deepEqual(todo, [], 'limit-deferred always drain');
        assert.ok(runs.length <= sc.n);
        const delivered = new Set<number>();
        for (const r of runs) {
          for (const id of r.rcptsSent) assert.ok(!delivered.has(id), `recipient ${id} sent again after delivery`);
          for (const [id, v] of r.out.perRecipient) if (v.kind === 'delivered') delivered.add(id);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('I6: the limit reply is reported with A, for the destination to learn', () => {
  test('3 accepted, then 452: limitReached = { accepted: 3, the 452 }', () => {
    const r = run(ids(9), limitRemote(3, '452 4.5.3 Too many recipients'), { pipelining: true });
    assert.equal(r.out.limitReached?.accepted, 3);
    assert.equal(r.out.limitReached?.reply.code, 452);
  });
  test('no limit met (a 552 to the first recipient is per-mailbox, rule 1): none reported', () => {
    assert.equal(run(ids(3), byPosition('552 mailbox full')).out.limitReached, undefined);
    assert.equal(run(ids(3), byPosition()).out.limitReached, undefined);
  });
});
