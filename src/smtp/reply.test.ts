import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplyParser } from './reply.js';

test('a reply line over the limit breaks the parser, with or without its line end', () => {
  const p = new ReplyParser({ maxLine: 20 });
  assert.deepEqual(p.push('250 ok\r\n'), [{ code: 250, lines: ['ok'] }]);
  assert.equal(p.broken, undefined);
  p.push(`250 ${'x'.repeat(30)}`);
  assert.match(p.broken ?? '', /longer than 20 octets/);
  assert.deepEqual(p.push('250 ok\r\n'), [], 'a broken parser drops everything');
  const q = new ReplyParser({ maxLine: 20 });
  q.push(`250 ${'x'.repeat(16)}\r\n`);
  assert.equal(q.broken, undefined, 'exactly at the limit is fine');
});

test('a reply with too many lines or bytes breaks the parser; replies before it are kept', () => {
  const p = new ReplyParser({ maxLines: 3 });
  const out = p.push('220 hi\r\n250-a\r\n250-b\r\n250-c\r\n250-d\r\n250 e\r\n');
  assert.deepEqual(out, [{ code: 220, lines: ['hi'] }]);
  assert.match(p.broken ?? '', /3 lines/);
  const q = new ReplyParser({ maxBytes: 100 });
  for (let i = 0; i < 20 && !q.broken; i++) q.push('250-0123456789\r\n');
  assert.match(q.broken ?? '', /100 octets/);
});

test('the default limits hold a long real EHLO reply and refuse an endless one', () => {
  const p = new ReplyParser();
  const ehlo = ['250-mx.example.test', ...Array.from({ length: 40 }, (_, i) => `250-EXT${i} ${'a'.repeat(100)}`), '250 SMTPUTF8'].join('\r\n') + '\r\n';
  assert.equal(p.push(ehlo).length, 1);
  for (let i = 0; i < 10_000 && !p.broken; i++) p.push('250-more\r\n');
  assert.ok(p.broken);
});
