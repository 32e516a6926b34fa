/**
 * Tests for dsn/report: the report is parsed back with mailparser (as a
 * recipient's mail client would) and split by hand into its MIME parts and
 * delivery-status fields, then checked field by field. Hostile reply text
 * must never add a header, a part or a boundary.
 */

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser, type ParsedMail } from 'mailparser';
import fc from 'fast-check';
import { buildDsn, DsnError, originalHeaders, type DsnInput, type DsnRecipient } from './report.js';

const T0 = Date.UTC(2025, 6, 1, 12, 0, 0); // Tue, 01 Jul 2025 12:00:00
const ORIGINAL = Buffer.from(
  'Received: from client.example.test\r\n' +
    'From: Alice <alice@example.test>\r\n' +
    'To: bob@example.test\r\n' +
    'Subject: Quarterly\r\n numbers\r\n' +
    'Message-ID: <orig.1@example.test>\r\n' +
    '\r\n' +
    'Hello Bob,\r\nthe body line.\r\n',
);

const bob: DsnRecipient = {
  address: 'bob@example.test',
  orcpt: 'rfc822;bob@example.test',
  action: 'failed',
  status: '5.2.2',
  remoteMta: 'mx.example.test',
  diagnostic: { code: 552, enhanced: '5.2.2', text: 'Mailbox full', command: 'RCPT TO' },
  lastAttemptAt: T0 - 60_000,
  hostDescription: 'mx.example.test[127.0.0.1]:25',
};

function input(over: Partial<DsnInput> = {}, orig: Partial<DsnInput['original']> = {}): DsnInput {
  return {
    reportingMta: 'mta.example.test',
    postmasterFrom: 'MAILER-DAEMON@mta.example.test',
    to: 'alice@example.test',
    original: { id: 'Q123', envid: 'ENV-42', receivedAt: T0 - 3_600_000, content: ORIGINAL, ...orig },
    recipients: [bob],
    now: T0,
    boundary: 'TESTBOUNDARY',
    ...over,
  };
}

interface Part {
  headers: Map<string, string>;
  body: Buffer;
}

/** Splits a multipart body by hand (RFC 2046 §5.1.1), so part counts do not depend on any parser's leniency. */
function splitParts(message: Buffer, boundary: string): Part[] {
  const text = message.toString('latin1');
  const delim = `\r\n--${boundary}`;
  const pieces = text.split(delim);
  assert.ok(pieces.length >= 3, 'at least one part and a closing delimiter');
  const last = pieces[pieces.length - 1] ?? '';
  assert.ok(last.startsWith('--'), 'closing delimiter present');
  return pieces.slice(1, -1).map((p) => {
    assert.ok(p.startsWith('\r\n'), 'delimiter line ends with CRLF');
    const raw = p.slice(2);
    const end = raw.indexOf('\r\n\r\n');
    const head = end >= 0 ? raw.slice(0, end) : raw;
    return { headers: fields(head), body: Buffer.from(end >= 0 ? raw.slice(end + 4) : '', 'latin1') };
  });
}

/** Header-style lines → map of lower-cased name to unfolded value; duplicates are an error. */
function fields(block: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of block.replace(/\r\n(?=[ \t])/g, '').split('\r\n')) {
    if (line === '') continue;
    const m = /^([^:\s]+):\s?(.*)$/.exec(line);
    assert.ok(m, `not a field: ${JSON.stringify(line)}`);
    const name = (m[1] ?? '').toLowerCase();
    assert.ok(!out.has(name), `duplicate field ${name}`);
    out.set(name, m[2] ?? '');
  }
  return out;
}

/** The delivery-status body → per-message group, then the recipient groups. */
function statusGroups(body: Buffer): Map<string, string>[] {
  return body
    .toString('latin1')
    .replace(/(\r\n)+$/, '')
    .split('\r\n\r\n')
    .map(fields);
}

async function parse(b: Buffer): Promise<ParsedMail> {
  return simpleParser(b, { skipTextToHtml: true });
}

const PER_MESSAGE = new Set(['reporting-mta', 'x-halcyon-queue-id', 'original-envelope-id', 'arrival-date']);
const PER_RECIPIENT = new Set([
  'original-recipient',
  'final-recipient',
  'action',
  'status',
  'remote-mta',
  'diagnostic-code',
  'last-attempt-date',
  'will-retry-until',
]);

describe('buildDsn: a failure report', () => {
  test('top-level headers', async () => {
    const r = buildDsn(input());
    const m = await parse(r.body);
    assert.deepEqual(m.from?.value.map((a) => [a.name, a.address]), [['Mail Delivery System', 'MAILER-DAEMON@mta.example.test']]);
    assert.equal(m.subject, 'Undelivered Mail Returned to Sender');
    assert.equal(r.subject, 'Undelivered Mail Returned to Sender');
    assert.equal(m.messageId, r.messageId);
    assert.match(r.messageId, /^<[^<>@\s]+@mta\.example\.test>$/);
    assert.equal(m.inReplyTo, '<orig.1@example.test>');
    assert.equal(m.references, '<orig.1@example.test>');
    assert.equal(m.headers.get('auto-submitted'), 'auto-replied');
    assert.equal(m.headers.get('mime-version'), '1.0');
    const top = fields(r.body.toString('latin1').split('\r\n\r\n')[0] ?? '');
    assert.equal(top.get('to'), '<alice@example.test>');
    assert.equal(top.get('date'), 'Tue, 01 Jul 2025 12:00:00 +0000');
    assert.match(top.get('content-type') ?? '', /^multipart\/report; report-type=delivery-status;\s+boundary="TESTBOUNDARY"$/);
    assert.equal(r.boundary, 'TESTBOUNDARY');
    assert.equal(r.kind, 'failure');
    assert.equal(r.bodyType, '7BIT');
  });

  test('three parts: text/plain, message/delivery-status, message/rfc822', async () => {
    const r = buildDsn(input());
    const parts = splitParts(r.body, r.boundary);
    assert.deepEqual(
      parts.map((p) => p.headers.get('content-type')),
      ['text/plain; charset=us-ascii', 'message/delivery-status', 'message/rfc822'],
    );
    const m = await parse(r.body);
    assert.equal(m.attachments.length, 1);
    assert.equal(m.attachments[0]?.contentType, 'message/rfc822');
    assert.ok(m.attachments[0]?.content.equals(ORIGINAL), 'full original returned byte for byte');
    assert.equal(r.returned, 'full');
  });

  test('human part names the recipient, the host and its exact reply', () => {
    const r = buildDsn(input());
    const human = splitParts(r.body, r.boundary)[0]?.body.toString('latin1') ?? '';
    assert.match(human, /^This is the mail system at host mta\.example\.test\./);
    assert.match(human, /could not\r\nbe delivered/);
    const unwrapped = human.replace(/\r\n {4}/g, ' ');
    assert.ok(
      unwrapped.includes('<bob@example.test>: host mx.example.test[127.0.0.1]:25 said: 552 5.2.2 Mailbox full (in reply to RCPT TO)'),
      unwrapped,
    );
    for (const line of human.split('\r\n')) assert.ok(line.length <= 78, `long line: ${line}`);
  });

  test('delivery-status fields, field by field', () => {
    const r = buildDsn(input());
    const groups = statusGroups(splitParts(r.body, r.boundary)[1]?.body ?? Buffer.alloc(0));
    assert.equal(groups.length, 2);
    assert.deepEqual(
      [...(groups[0] ?? new Map())],
      [
        ['reporting-mta', 'dns; mta.example.test'],
        ['x-halcyon-queue-id', 'Q123'],
        ['original-envelope-id', 'ENV-42'],
        ['arrival-date', 'Tue, 01 Jul 2025 11:00:00 +0000'],
      ],
    );
    assert.deepEqual(
      [...(groups[1] ?? new Map())],
      [
        ['original-recipient', 'rfc822; bob@example.test'],
        ['final-recipient', 'rfc822; bob@example.test'],
        ['action', 'failed'],
        ['status', '5.2.2'],
        ['remote-mta', 'dns; mx.example.test'],
        ['diagnostic-code', 'smtp; 552 5.2.2 Mailbox full'],
        ['last-attempt-date', 'Tue, 01 Jul 2025 11:59:00 +0000'],
      ],
    );
  });

  test('optional fields are absent when unknown; an invalid status becomes the generic one', () => {
    const r = buildDsn(
      input({ recipients: [{ address: 'carol@example.test', action: 'failed', status: 'bogus' }] }, { envid: undefined }),
    );
    const groups = statusGroups(splitParts(r.body, r.boundary)[1]?.body ?? Buffer.alloc(0));
    assert.equal(groups[0]?.has('original-envelope-id'), false);
    assert.deepEqual([...(groups[1]?.keys() ?? [])], ['final-recipient', 'action', 'status']);
    assert.equal(groups[1]?.get('status'), '5.0.0');
  });

  test('one report for three recipients failed in one attempt', () => {
    const three: DsnRecipient[] = ['bob', 'carol', 'dave'].map((n, i) => ({
      ...bob,
      address: `${n}@example.test`,
      orcpt: undefined,
      diagnostic: { code: 550, enhanced: '5.1.1', text: `User ${n} unknown ${i}`, command: 'RCPT TO' },
      status: '5.1.1',
    }));
    const r = buildDsn(input({ recipients: three }));
    const parts = splitParts(r.body, r.boundary);
    assert.equal(parts.length, 3);
    const groups = statusGroups(parts[1]?.body ?? Buffer.alloc(0));
    assert.equal(groups.length, 4);
    assert.deepEqual(
      groups.slice(1).map((g) => [g.get('final-recipient'), g.get('diagnostic-code')]),
      [
        ['rfc822; bob@example.test', 'smtp; 550 5.1.1 User bob unknown 0'],
        ['rfc822; carol@example.test', 'smtp; 550 5.1.1 User carol unknown 1'],
        ['rfc822; dave@example.test', 'smtp; 550 5.1.1 User dave unknown 2'],
      ],
    );
    const human = parts[0]?.body.toString('latin1').replace(/\r\n {4}/g, ' ') ?? '';
    for (const n of ['bob', 'carol', 'dave']) {
      assert.ok(human.includes(`<${n}@example.test>: host mx.example.test[127.0.0.1]:25 said: 550 5.1.1 User ${n} unknown`));
    }
  });
});

describe('buildDsn: returned content', () => {
  test('RET=HDRS returns only the header block as text/rfc822-headers', async () => {
    const r = buildDsn(input({}, { ret: 'HDRS' }));
    const parts = splitParts(r.body, r.boundary);
    assert.equal(parts[2]?.headers.get('content-type'), 'text/rfc822-headers');
    assert.equal(parts[2]?.body.toString('latin1'), originalHeaders(ORIGINAL).headerBlock.toString('latin1'));
    assert.ok(!r.body.includes('the body line'));
    assert.equal(r.returned, 'headers');
    const m = await parse(r.body);
    assert.equal(m.attachments.length, 1);
    assert.equal(m.attachments[0]?.contentType, 'text/rfc822-headers');
  });

  test('RET=FULL over the cap returns headers only and says so', () => {
    const big = Buffer.concat([ORIGINAL, Buffer.from('x'.repeat(70) + '\r\n').subarray(0, 72)]);
    const r = buildDsn(input({ maxReturnedBytes: ORIGINAL.length }, { ret: 'FULL', content: big }));
    const parts = splitParts(r.body, r.boundary);
    assert.equal(parts[2]?.headers.get('content-type'), 'text/rfc822-headers');
    assert.equal(r.returned, 'headers');
    assert.ok(!r.body.includes('the body line'));
    const human = parts[0]?.body.toString('latin1').replace(/\r\n/g, ' ') ?? '';
    assert.match(human, new RegExp(`original message was ${big.length} bytes, over the limit of ${ORIGINAL.length} bytes`));
  });

  test('RET=FULL at exactly the cap is returned whole', () => {
    const r = buildDsn(input({ maxReturnedBytes: ORIGINAL.length }, { ret: 'FULL' }));
    assert.equal(r.returned, 'full');
    assert.equal(splitParts(r.body, r.boundary)[2]?.headers.get('content-type'), 'message/rfc822');
  });

  test('8-bit original: returned part and multipart declare 8bit, everything else stays 7-bit', async () => {
    const eight = Buffer.from('From: a@example.test\r\nSubject: Grüße\r\n\r\nBody with ümlauts and 日本語\r\n', 'utf8');
    const r = buildDsn(input({}, { content: eight }));
    assert.equal(r.bodyType, '8BITMIME');
    const parts = splitParts(r.body, r.boundary);
    assert.equal(parts[2]?.headers.get('content-transfer-encoding'), '8bit');
    assert.equal(fields(r.body.toString('latin1').split('\r\n\r\n')[0] ?? '').get('content-transfer-encoding'), '8bit');
    assert.ok(parts[2]?.body.equals(eight), 'original bytes unchanged');
    const before = r.body.subarray(0, r.body.indexOf(eight));
    assert.ok(before.every((b) => b < 0x80), 'headers, human and status parts are 7-bit');
    const m = await parse(r.body);
    assert.ok(m.attachments[0]?.content.equals(eight));
  });

  test('a returned original with bare LF is declared binary', () => {
    const r = buildDsn(input({}, { content: Buffer.from('Subject: x\n\nbare\n') }));
    assert.equal(r.bodyType, 'BINARYMIME');
    assert.equal(splitParts(r.body, r.boundary)[2]?.headers.get('content-transfer-encoding'), 'binary');
  });
});

describe('buildDsn: delay and success', () => {
  test('delayed report has Will-Retry-Until and the warning intro', () => {
    const until = T0 + 5 * 86_400_000;
    const r = buildDsn(
      input({
        recipients: [{ ...bob, action: 'delayed', status: '4.4.1', diagnostic: { code: 451, text: 'Try later' }, willRetryUntil: until }],
      }),
    );
    assert.equal(r.subject, 'Delayed Mail (still being retried)');
    const parts = splitParts(r.body, r.boundary);
    const g = statusGroups(parts[1]?.body ?? Buffer.alloc(0))[1];
    assert.equal(g?.get('action'), 'delayed');
    assert.equal(g?.get('status'), '4.4.1');
    assert.equal(g?.get('will-retry-until'), 'Sun, 06 Jul 2025 12:00:00 +0000');
    const human = parts[0]?.body.toString('latin1') ?? '';
    assert.match(human, /THIS IS A WARNING ONLY/);
    assert.match(human, /Will retry until Sun, 06 Jul 2025 12:00:00 \+0000/);
    assert.equal(r.returned, 'headers', 'RET absent: a delay report returns headers only');
  });

  test('success report: its own subject and intro, no Will-Retry-Until even if given', () => {
    const r = buildDsn(
      input({
        recipients: [{ ...bob, action: 'delivered', status: '2.0.0', diagnostic: { code: 250, text: 'Ok queued' }, willRetryUntil: T0 }],
      }),
    );
    assert.equal(r.subject, 'Successful Mail Delivery Report');
    const parts = splitParts(r.body, r.boundary);
    const g = statusGroups(parts[1]?.body ?? Buffer.alloc(0))[1];
    assert.equal(g?.has('will-retry-until'), false);
    const human = parts[0]?.body.toString('latin1').replace(/\r\n {4}/g, ' ') ?? '';
    assert.match(human, /successfully delivered/);
    assert.ok(human.includes('<bob@example.test>: delivery via mx.example.test[127.0.0.1]:25: 250 Ok queued'));
  });
});

describe('buildDsn: hostile remote text', () => {
  const hostile =
    'Mailbox full\r\nX-Injected: yes\r\n\r\n--TESTBOUNDARY\r\nContent-Type: text/html\r\n\r\n<b>owned</b>\r\n--TESTBOUNDARY--\u0000\u001b[31m';

  test('CRLF and a boundary in a reply add no header and no part', async () => {
    const r = buildDsn(
      input({
        recipients: [{ ...bob, remoteMta: 'mx.example.test\r\nX-Injected: yes', diagnostic: { code: 552, text: hostile, command: 'RCPT TO\r\nX-Injected: yes' } }],
      }),
    );
    assert.notEqual(r.boundary, 'TESTBOUNDARY', 'a boundary found in the content is replaced');
    const m = await parse(r.body);
    assert.equal(m.headers.has('x-injected'), false);
    assert.equal(m.html, false, 'no text/html part');
    assert.equal(m.attachments.length, 1);
    assert.equal(m.attachments[0]?.contentType, 'message/rfc822');
    for (const a of m.attachments) assert.equal(a.headers.has('x-injected'), false);
    const parts = splitParts(r.body, r.boundary);
    assert.equal(parts.length, 3);
    for (const p of parts) assert.equal(p.headers.has('x-injected'), false);
    const groups = statusGroups(parts[1]?.body ?? Buffer.alloc(0));
    assert.deepEqual([...(groups[0]?.keys() ?? [])].filter((k) => !PER_MESSAGE.has(k)), []);
    assert.deepEqual([...(groups[1]?.keys() ?? [])].filter((k) => !PER_RECIPIENT.has(k)), []);
    assert.equal(
      groups[1]?.get('diagnostic-code'),
      'smtp; 552 Mailbox full X-Injected: yes --TESTBOUNDARY Content-Type: text/html <b>owned</b> --TESTBOUNDARY-- [31m',
    );
    assert.ok(!/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(r.body.toString('latin1')), 'no control characters');
  });

  test('non-ASCII reply text is replaced; long text is folded ≤ 78 and unfolds to the same words', () => {
    const words = Array.from({ length: 300 }, (_, i) => `word${i}`).join(' ');
    const r = buildDsn(input({ recipients: [{ ...bob, diagnostic: { code: 550, text: `Pöstfach ☃ ${words}` } }] }));
    const parts = splitParts(r.body, r.boundary);
    const raw = parts[1]?.body.toString('latin1') ?? '';
    for (const line of raw.split('\r\n')) assert.ok(line.length <= 78, `line over 78: ${line.length}`);
    assert.equal(statusGroups(parts[1]?.body ?? Buffer.alloc(0))[1]?.get('diagnostic-code'), `smtp; 550 P?stfach ? ${words}`);
    assert.ok(r.body.every((b) => b < 0x80));
  });

  test('a 5000-character word stays within 998 per line', () => {
    const r = buildDsn(input({ recipients: [{ ...bob, diagnostic: { code: 550, text: 'x'.repeat(5000) } }] }));
    for (const line of r.body.toString('latin1').split('\r\n')) assert.ok(line.length <= 998);
  });

  test('property: any reply text gives exactly three parts and only known fields', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ maxLength: 60 }), (text, host) => {
        const r = buildDsn(
          input({ boundary: undefined, recipients: [{ ...bob, remoteMta: host, hostDescription: host, diagnostic: { code: 550, text } }] }),
        );
        const parts = splitParts(r.body, r.boundary);
        assert.equal(parts.length, 3);
        const groups = statusGroups(parts[1]?.body ?? Buffer.alloc(0));
        assert.equal(groups.length, 2);
        for (const k of groups[1]?.keys() ?? []) assert.ok(PER_RECIPIENT.has(k), k);
        for (const line of r.body.toString('latin1').split('\r\n')) assert.ok(line.length <= 998);
        assert.ok(r.body.every((b) => b < 0x80 && (b >= 0x20 || b === 0x0d || b === 0x0a || b === 0x09)));
      }),
      { numRuns: 200 },
    );
  });

  test('a random source that keeps colliding is an error, not a loop', () => {
    const zeros = (n: number): Buffer => Buffer.alloc(n);
    const content = Buffer.from(`Subject: x\r\n\r\n=_halcyon_${'00'.repeat(24)}\r\n`);
    assert.throws(
      () => buildDsn(input({ boundary: undefined, random: zeros }, { content })),
      (e: unknown) => e instanceof DsnError && e.code === 'HAL_ERR_DSN_BOUNDARY',
    );
  });
});

describe('buildDsn: guards and identity', () => {
  test('no recipients, the null sender, an invalid boundary: typed errors', () => {
    const code = (c: string) => (e: unknown) => e instanceof DsnError && e.code === c;
    assert.throws(() => buildDsn(input({ recipients: [] })), code('HAL_ERR_DSN_NO_RECIPIENTS'));
    assert.throws(() => buildDsn(input({ to: '' })), code('HAL_ERR_DSN_NULL_SENDER'));
    assert.throws(() => buildDsn(input({ boundary: 'bad\r\nboundary' })), code('HAL_ERR_DSN_BOUNDARY'));
  });

  test('Message-IDs differ between reports made at the same instant', () => {
    const a = buildDsn(input({ boundary: undefined }));
    const b = buildDsn(input({ boundary: undefined }));
    assert.notEqual(a.messageId, b.messageId);
    assert.notEqual(a.boundary, b.boundary);
  });

  test('no In-Reply-To or References when the original has no usable Message-ID', async () => {
    const r = buildDsn(input({}, { content: Buffer.from('Subject: x\r\nMessage-ID: not an id\r\n\r\nbody\r\n') }));
    const m = await parse(r.body);
    assert.equal(m.headers.has('in-reply-to'), false);
    assert.equal(m.headers.has('references'), false);
  });
});
