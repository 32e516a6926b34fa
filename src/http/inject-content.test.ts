import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { composeStructured, parseStructured, substitute } from './inject-content.js';
import { canonicalJson, parseRequest } from './inject.js';
import { TokenBuckets } from './token-bucket.js';

describe('inject-content', () => {
  test('substitute: known names replaced, unknown ones emptied, HTML-escaped in html', () => {
    assert.equal(substitute('Hi {{ name }}, {{missing}}!', { name: 'Anna' }), 'Hi Anna, !');
    assert.equal(substitute('<p>{{name}}</p>', { name: '<b>&"\'' }, true), '<p>&lt;b&gt;&amp;&quot;&#39;</p>');
    assert.equal(substitute('{{__proto__}}', {}), '');
  });
  test('parseStructured: each wrong shape is a message', () => {
    assert.match(parseStructured({ subject: 's' }) as string, /text or html/);
    assert.match(parseStructured({ text: 'x', headers: { 'Bad Name': 'v' } }) as string, /header field name/);
    assert.match(parseStructured({ text: 'x', headers: { 'X-A': 'a\r\nBcc: x@y' } }) as string, /line breaks/);
    assert.match(parseStructured({ text: 'x', attachments: [{ filename: 'a', content: '!!' }] }) as string, /base64/);
    assert.match(parseStructured({ text: 'x', attachments: [{ filename: 'a', content_type: 'nope', content: 'eA==' }] }) as string, /media type/);
    assert.equal(typeof parseStructured({ text: 'x', attachments: [{ filename: 'a.txt', content: 'eA==' }] }), 'object');
  });
  test('composeStructured: headers given replace the composed fields; the message parses back', async () => {
    const c = parseStructured({ subject: 'Grüße {{n}}', text: 't', headers: { To: 'list@x.test', 'X-Id': '7' } });
    assert.ok(typeof c === 'object');
    const mail = await simpleParser(await composeStructured(c, { from: 'a@s.test', to: 'r@x.test' }, { n: '✓' }));
    assert.equal(mail.subject, 'Grüße ✓');
    assert.equal((mail.to as { text: string }).text, 'list@x.test');
    assert.equal(mail.headers.get('x-id'), '7');
  });
});

describe('inject request', () => {
  test('canonicalJson ignores the order of keys, not of arrays', () => {
    assert.equal(canonicalJson({ b: 1, a: [2, { d: 1, c: 2 }] }), canonicalJson({ a: [2, { c: 2, d: 1 }], b: 1 }));
    assert.notEqual(canonicalJson([1, 2]), canonicalJson([2, 1]));
  });
  test('parseRequest: both shapes; limits and bad fields refused', () => {
    assert.equal(parseRequest({ from: '', to: ['a@x.test'], content: 'x' }, 10).strict, true);
    const r = parseRequest({ from: 'f@x.test', recipients: 'a@x.test', content: { text: 'x' }, tenant: ' t ' }, 10);
    assert.equal(r.strict, false);
    assert.deepEqual(r.recipients, [{ email: 'a@x.test' }]);
    assert.equal(r.tenant, 't');
    assert.throws(() => parseRequest({ from: 'f', recipients: ['a', 'b', 'c'], content: 'x' }, 2), /too many recipients/);
    assert.throws(() => parseRequest({ from: 'f', recipients: [{ email: 'a', vars: { v: 1 } }], content: 'raw' }, 2), /vars need structured/);
    assert.throws(() => parseRequest({ from: 'f', recipients: ['a'], content: 'x', metadata: [1] }, 2), /metadata must be an object/);
    assert.throws(() => parseRequest({ from: 'f', recipients: ['a'], content: 'x', metadata: { big: 'x'.repeat(5000) } }, 2), /4096 bytes/);
    assert.throws(() => parseRequest({ recipients: ['a'], content: 'x' }, 2), /from must be a string/);
  });
  test('token buckets: a burst, then one request per 1/rate seconds, per token', () => {
    const b = new TokenBuckets();
    assert.equal(b.take('a', 0, 2, 2), 0);
    assert.equal(b.take('a', 0, 2, 2), 0);
    assert.equal(b.take('a', 0, 2, 2), 500);
    assert.equal(b.take('b', 0, 2, 2), 0, 'another token has its own bucket');
    assert.equal(b.take('a', 500, 2, 2), 0);
    assert.equal(b.take('a', 500, 0, 2), 0, 'rate 0: unlimited');
  });
});
