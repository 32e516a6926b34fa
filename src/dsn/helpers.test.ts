/**
 * Tests for the helpers dsn/report exports to the scheduler: wantsDsn
 * (RFC 3461 NOTIFY, checked against the RFC's table) and originalHeaders.
 */

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { originalHeaders, wantsDsn } from './report.js';

const ORIGINAL = Buffer.from(
  'Received: from client.example.test\r\n' +
    'From: Alice <alice@example.test>\r\n' +
    'Subject: Quarterly\r\n numbers\r\n' +
    'Message-ID: <orig.1@example.test>\r\n' +
    '\r\n' +
    'Hello Bob,\r\n',
);

describe('wantsDsn (RFC 3461 NOTIFY)', () => {
  const cases: Array<[Parameters<typeof wantsDsn>[0], boolean, boolean, boolean]> = [
    // notify,                      failure, delay, success
    [undefined, true, true, false],
    ['NEVER', false, false, false],
    [['SUCCESS'], false, false, true],
    [['DELAY'], false, true, false],
    [['FAILURE'], true, false, false],
    [['SUCCESS', 'FAILURE', 'DELAY'], true, true, true],
  ];
  for (const [notify, failure, delay, success] of cases) {
    test(`NOTIFY=${JSON.stringify(notify)}`, () => {
      assert.equal(wantsDsn(notify, 'failure'), failure);
      assert.equal(wantsDsn(notify, 'delay'), delay);
      assert.equal(wantsDsn(notify, 'success'), success);
    });
  }
});

describe('originalHeaders', () => {
  test('header block, folded Subject and Message-ID', () => {
    const h = originalHeaders(ORIGINAL);
    assert.equal(h.messageId, '<orig.1@example.test>');
    assert.equal(h.subject, 'Quarterly numbers');
    assert.ok(h.headerBlock.toString('latin1').endsWith('Message-ID: <orig.1@example.test>\r\n'));
  });

  test('no blank line: the whole content is headers; no Message-ID: undefined', () => {
    const c = Buffer.from('Subject: only\r\nX-A: b\r\n');
    const h = originalHeaders(c);
    assert.ok(h.headerBlock.equals(c));
    assert.equal(h.messageId, undefined);
    assert.equal(h.subject, 'only');
  });
});
