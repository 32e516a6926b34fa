import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatMailbox, isAddressError, parsePath } from './address.js';

const path = (t: string, utf8 = false, allowNull = false) => parsePath(t, { utf8, allowNull });

describe('parsePath', () => {
  test('plain, quoted, literal and null paths', () => {
    assert.deepEqual(path('<Alice@Example.TEST>'), { mailbox: { local: 'Alice', domain: 'example.test', quoted: false, literal: false } });
    const q = path('<"a b@c"@example.test>');
    assert.ok(!isAddressError(q) && q.mailbox?.local === 'a b@c' && q.mailbox.quoted);
    const l = path('<u@[192.0.2.1]>');
    assert.ok(!isAddressError(l) && l.mailbox?.literal && l.mailbox.domain === '[192.0.2.1]');
    assert.ok(!isAddressError(path('<u@[IPv6:2001:db8::1]>')));
    assert.deepEqual(path('<>', false, true), {});
    assert.equal((path('<>') as { error: string }).error, 'null-not-allowed');
  });

  test('source routes are parsed and kept for the relay policy', () => {
    const r = path('<@relay.test,@b.test:user@c.test>');
    assert.ok(!isAddressError(r));
    assert.deepEqual(r.sourceRoute, ['@relay.test', '@b.test']);
    assert.equal(r.mailbox?.domain, 'c.test');
  });

  test('postmaster without a domain', () => {
    const r = path('<Postmaster>');
    assert.ok(!isAddressError(r) && r.mailbox?.local === 'postmaster' && r.mailbox.domain === '');
  });

  test('limits: local part 64, domain 255', () => {
    assert.equal((path(`<${'a'.repeat(65)}@x.test>`) as { error: string }).error, 'local-too-long');
    assert.ok(!isAddressError(path(`<${'a'.repeat(64)}@x.test>`)));
    const longDomain = `${'a'.repeat(60)}.`.repeat(5) + 'test';
    assert.ok(isAddressError(path(`<a@${longDomain}>`)));
  });

  test('syntax errors', () => {
    for (const bad of ['a@b', '<a@>', '<@b>', '<a b@c>', '<a@b..c>', '<a@-b.c>', '<a@[300.1.1.1]>', '<"unterminated@b>', '<a@b>x']) {
      assert.ok(isAddressError(path(bad)), bad);
    }
  });

  test('UTF-8 only with SMTPUTF8', () => {
    assert.equal((path('<josé@exämple.test>') as { error: string }).error, 'utf8-not-allowed');
    assert.ok(!isAddressError(path('<josé@exämple.test>', true)));
  });

  test('formatMailbox quotes what needs quoting', () => {
    const r = path('<"a b"@x.test>');
    assert.ok(!isAddressError(r) && r.mailbox);
    assert.equal(formatMailbox(r.mailbox), '"a b"@x.test');
  });
});
