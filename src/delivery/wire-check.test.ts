import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wireMismatch } from './wire-check.js';

test('a line built from a formatted address and its parameters parses back', () => {
  assert.equal(wireMismatch('MAIL', 'MAIL FROM:<a@b.test> SIZE=10\r\n', 'a@b.test', ['SIZE=10']), undefined);
  assert.equal(wireMismatch('MAIL', 'MAIL FROM:<> SIZE=10\r\n', '', ['SIZE=10']), undefined);
  assert.equal(wireMismatch('MAIL', 'MAIL FROM:<"evil@x.test> RET=FULL"@src.test>\r\n', '"evil@x.test> RET=FULL"@src.test', []), undefined);
  assert.equal(wireMismatch('RCPT', 'RCPT TO:<"a b"@c.test> NOTIFY=NEVER\r\n', '"a b"@c.test', ['NOTIFY=NEVER']), undefined);
});

test('an unquoted local part holding "> " smuggles parameters: refused', () => {
  const stored = 'evil@attacker.test> RET=FULL ENVID=x@src.test';
  assert.match(wireMismatch('MAIL', `MAIL FROM:<${stored}> SIZE=5\r\n`, stored, ['SIZE=5']) ?? '', /does not parse|not the stored/);
  const rcpt = 'victim@elsewhere.test>@outside.test';
  assert.ok(wireMismatch('RCPT', `RCPT TO:<${rcpt}>\r\n`, rcpt, []));
});

test('extra, missing or altered parameters, CR/LF inside, the wrong verb: refused', () => {
  assert.ok(wireMismatch('MAIL', 'MAIL FROM:<a@b.test> SIZE=10 RET=FULL\r\n', 'a@b.test', ['SIZE=10']));
  assert.ok(wireMismatch('MAIL', 'MAIL FROM:<a@b.test>\r\n', 'a@b.test', ['SIZE=10']));
  assert.ok(wireMismatch('MAIL', 'MAIL FROM:<a@b.test>\r\nRSET\r\n', 'a@b.test', []));
  assert.ok(wireMismatch('MAIL', 'MAIL FROM:<a@b.test>', 'a@b.test', []));
  assert.ok(wireMismatch('RCPT', 'MAIL FROM:<a@b.test>\r\n', 'a@b.test', []));
  assert.ok(wireMismatch('MAIL', 'MAIL FROM:<a@b.test>\r\n', '', []));
  assert.ok(wireMismatch('MAIL', 'MAIL FROM:<>\r\n', 'a@b.test', []));
  assert.ok(wireMismatch('RCPT', 'RCPT TO:<@r.test:a@b.test>\r\n', 'a@b.test', []));
});
