/** cli/format: `queue list`, `queue show` and `destinations` print what came with mail escaped, never raw. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MessageDetail } from '../http/admin-api.js';
import { formatDestinations, formatMessageDetail, formatQueueList } from './format.js';

const NOW = Date.UTC(2026, 10, 30, 13, 0, 0);
const ESC = '\x1b';

const detail: MessageDetail = {
  message: { id: '0123456789ABCDEF', sender: `evil${ESC}[2J@src.test`, params: { smtputf8: true }, receivedAt: NOW - 60_000, size: 10,
    trace: { clientIp: '192.0.2.1', clientHelo: `helo${ESC}]0;t${ESC}\\`, protocol: 'ESMTP' }, held: false },
  headers: { subject: `hi ${ESC}[31mred\u202e` },
  recipients: [{
    id: 1, messageId: '0123456789ABCDEF', address: 'bob@dest.test', destination: 'dest.test', state: 'deferred', attempts: 1, nextAttemptAt: NOW + 60_000,
    delayNotified: false, dsnDone: false, updatedAt: NOW,
    lastReply: { code: 451, enhanced: '4.3.0', text: `busy\r\n${ESC}[5mblink`, host: 'mx.dest.test[192.0.2.2]:25', command: 'RCPT TO' },
    history: [{ recipientId: 1, at: NOW - 30_000, state: 'deferred', reply: { code: 451, text: `busy ${ESC}P`, host: 'mx.dest.test[192.0.2.2]:25', command: 'RCPT TO' } }],
  }],
};

test('queue show and queue list: subject, sender, HELO and remote replies with their control characters escaped', () => {
  const show = formatMessageDetail(detail, NOW);
  assert.ok(!show.includes(ESC) && !show.includes('\r') && !show.includes('\u202e'), show);
  assert.match(show, /subject: +hi \\x1b\[31mred\\u\{202e\}\n/);
  assert.match(show, /sender: +<evil\\x1b\[2J@src\.test>/);
  assert.match(show, /from helo\\x1b\]0;t\\x1b\\ \[192\.0\.2\.1\]/);
  assert.match(show, /said: 451 busy \\x1bP \(in reply to RCPT TO\)/);
  const list = formatQueueList([detail], NOW);
  assert.ok(!list.includes(ESC) && !list.includes('\r'), list);
  assert.match(list, /said: 451 4\.3\.0 busy\\r\\n\\x1b\[5mblink \(in reply to RCPT TO\)/);
});

test('destinations: the last error (a remote\'s words) escaped', () => {
  const out = formatDestinations([{ key: 'dest.test', health: 'backoff', backoffUntil: NOW + 60_000, backoffMs: 60_000, consecutiveFailures: 1,
    lastError: `421 ${ESC}[2Jgo away`, updatedAt: NOW, generation: 1, queued: 1, connections: 0 }], NOW);
  assert.ok(!out.includes(ESC), out);
  assert.match(out, /421 \\x1b\[2Jgo away/);
});
