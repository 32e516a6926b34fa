import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isAddressError, parsePath, type Path } from '../smtp/address.js';
import { networkMatcher, relayVerdict } from './policy.js';
import { dataWithoutRecipients, sequenceCheck } from './states.js';

const p = (t: string): Path => {
  const r = parsePath(t, { utf8: false, allowNull: false });
  assert.ok(!isAddressError(r), t);
  return r;
};
const isLocalDomain = (d: string) => d === 'local.test';

describe('relay policy', () => {
  test('outsiders may send only to local domains', () => {
    assert.equal(relayVerdict({ path: p('<alice@local.test>'), mayRelay: false, isLocalDomain }).kind, 'local');
    const v = relayVerdict({ path: p('<bob@remote.test>'), mayRelay: false, isLocalDomain });
    assert.deepEqual(v, { kind: 'refuse', refusal: { code: 554, enhanced: '5.7.1', text: 'Relay access denied' } });
  });
  test('the classic tricks are refused to outsiders', () => {
    for (const t of ['<alice%remote.test@local.test>', '<remote.test!alice@local.test>', '<@local.test:alice@remote.test>',
      '<@local.test:alice@local.test>', '<"alice@remote.test"@local.test>', '<alice@[127.0.0.1]>']) {
      assert.equal(relayVerdict({ path: p(t), mayRelay: false, isLocalDomain }).kind, 'refuse', t);
    }
  });
  test('relay networks and authenticated clients may relay', () => {
    assert.equal(relayVerdict({ path: p('<bob@remote.test>'), mayRelay: true, isLocalDomain }).kind, 'relay');
    assert.equal(relayVerdict({ path: p('<postmaster>'), mayRelay: false, isLocalDomain }).kind, 'local');
  });
  test('a mailbox-store (LMTP-routed) domain is a final destination: accepted from outsiders, queued to its route, tricks still refused', () => {
    const isStoreDomain = (d: string) => d === 'dove.test';
    assert.equal(relayVerdict({ path: p('<u1@dove.test>'), mayRelay: false, isLocalDomain, isStoreDomain }).kind, 'relay');
    assert.equal(relayVerdict({ path: p('<u1%remote.test@dove.test>'), mayRelay: false, isLocalDomain, isStoreDomain }).kind, 'refuse');
    assert.equal(relayVerdict({ path: p('<bob@remote.test>'), mayRelay: false, isLocalDomain, isStoreDomain }).kind, 'refuse');
  });
  test('network matcher handles v4, v6 and v4-mapped addresses', () => {
    const m = networkMatcher(['127.0.0.0/8', '::1/128', '192.0.2.7']);
    assert.ok(m('127.0.0.5') && m('::1') && m('::ffff:127.0.0.1') && m('192.0.2.7'));
    assert.ok(!m('192.0.2.8') && !m('::2') && !m('10.0.0.1'));
  });
});

describe('command order', () => {
  test('the state table', () => {
    assert.equal(sequenceCheck('fresh', 'MAIL'), 'MAIL needs EHLO/HELO first, and no transaction in progress');
    assert.equal(sequenceCheck('greeted', 'MAIL'), undefined);
    assert.notEqual(sequenceCheck('mail', 'MAIL'), undefined, 'no nested MAIL');
    assert.notEqual(sequenceCheck('greeted', 'RCPT'), undefined);
    assert.equal(sequenceCheck('rcpt', 'DATA'), undefined);
    assert.notEqual(sequenceCheck('mail', 'DATA'), undefined);
    assert.notEqual(sequenceCheck('bdat', 'DATA'), undefined, 'no DATA after BDAT');
    assert.notEqual(sequenceCheck('rcpt', 'STARTTLS'), undefined);
    assert.ok(dataWithoutRecipients('mail', 2));
    assert.ok(!dataWithoutRecipients('mail', 0));
  });
});

describe('[[users]] senders', () => {
  test('an exact address (any case), a whole "@domain", and the null sender are allowed; nothing else', async () => {
    const { senderAllowed } = await import('./auth.js');
    const rules = ['alice@example.test', '@alice.test'];
    assert.equal(senderAllowed(rules, 'alice@example.test'), true);
    assert.equal(senderAllowed(rules, 'Alice@Example.TEST'), true);
    assert.equal(senderAllowed(rules, 'anyone@alice.test'), true);
    assert.equal(senderAllowed(rules, ''), true);
    assert.equal(senderAllowed(rules, 'bob@example.test'), false);
    assert.equal(senderAllowed(rules, 'alice@sub.alice.test'), false, 'no subdomain matching');
    assert.equal(senderAllowed(rules, 'alice@example.test.evil'), false);
    assert.equal(senderAllowed([], 'alice@example.test'), false, 'an empty list allows only <>');
  });
});
