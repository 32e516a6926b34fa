import test from 'node:test';
import assert from 'node:assert/strict';
import { BdatReader } from './bdat.js';

test('BDAT chunks: exact octet counts across reads, pipelined rest handed back, one message at LAST', () => {
  const r = new BdatReader(1000);
  r.chunk(5, false);
  assert.equal(r.push(Buffer.from('ab\r')), undefined, 'three of five octets: more needed');
  const first = r.push(Buffer.from('\nc'));
  assert.deepEqual(first && { last: first.last, size: first.size, rest: first.rest.toString() }, { last: false, size: 5, rest: '' });
  r.chunk(4, true);
  const end = r.push(Buffer.from('de\r\nQUIT\r\n'));
  assert.ok(end?.last);
  assert.equal(end.content.toString(), 'ab\r\ncde\r\n');
  assert.equal(end.rest.toString(), 'QUIT\r\n', 'what follows the chunk goes back to the command reader');
  assert.deepEqual(end.flags, { bareLf: false, bareCr: false, nul: false, longLine: false, tooBig: false });
});

test('BDAT content is normalized as DATA is: a bare LF and a final bare CR become CRLF and are reported', () => {
  const r = new BdatReader(1000);
  r.chunk(7, true);
  const end = r.push(Buffer.from('a\nb\r\nc\r'));
  assert.ok(end?.last);
  assert.equal(end.content.toString(), 'a\r\nb\r\nc\r\n');
  assert.equal(end.flags.bareLf, true);
  assert.equal(end.flags.bareCr, true);
});

test('past the size cap the chunks are counted and consumed but nothing is kept', () => {
  const r = new BdatReader(8);
  r.chunk(6, false);
  assert.equal(r.push(Buffer.from('12345\n'))?.last, false);
  r.chunk(6, true);
  const end = r.push(Buffer.from('67890\nMAIL'));
  assert.ok(end?.last);
  assert.equal(end.flags.tooBig, true);
  assert.equal(end.content.length, 0);
  assert.equal(end.rest.toString(), 'MAIL');
});
