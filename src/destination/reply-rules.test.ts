/**
 * Tests for destination/reply-rules: each action with a reply that triggers it
 * and one that does not, the destination glob, the code filter, expiry and
 * how several rules in force combine; and the config schema's checks.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { parseConfig } from '../config/load.js';
import { compileRules, globToRegExp, matchRule, ruleEffect, triggerRule } from './reply-rules.js';

const GMAIL = 'mx:alt1.aspmx.l.google.com,aspmx.l.google.com';
const rulesOf = (rules: unknown[]) => compileRules(parseConfig({ delivery: { rules } }).delivery.rules);
const reply = (code: number, text: string, enhanced?: string) => ({ code, text, ...(enhanced ? { enhanced } : {}) });

describe('reply rules: matching', () => {
  const rules = rulesOf([
    { match: 'unusual rate of unsolicited mail', code: 421, action: 'suspend', for: '30m', destination: 'mx:*google.com*' },
    { match: '^4\\.7\\.28 ', action: 'set', max_connections: 2, rate: '20/min', for: '1h', destination: 'mx:*google.com*' },
    { match: 'user unknown in virtual mailbox table', action: 'bounce' },
  ]);

  test('suspend: triggered by its reply on a matching destination', () => {
    const r = matchRule(rules, GMAIL, reply(421, 'Our system has detected an unusual rate of unsolicited mail originating from your IP address.', '4.7.28'));
    assert.equal(r?.action, 'suspend');
  });
  test('suspend: not by another code, another text, or another destination', () => {
    assert.equal(matchRule(rules, GMAIL, reply(450, 'Our system has detected an unusual rate of unsolicited mail', '4.7.0')), undefined);
    assert.equal(matchRule(rules, GMAIL, reply(421, 'Service not available')), undefined);
    assert.equal(matchRule(rules, 'mx:mx1.example.test', reply(421, 'Our system has detected an unusual rate of unsolicited mail originating from your IP')), undefined);
  });
  test('set: matches the enhanced code through the subject "4.7.28 text"', () => {
    const r = matchRule(rules, GMAIL, reply(450, 'The user you are trying to contact is receiving mail at a rate that prevents additional messages', '4.7.28'));
    assert.equal(r?.action, 'set');
    assert.equal(r?.maxConnections, 2);
    assert.deepEqual(r?.rate, { count: 20, perMs: 60_000 });
  });
  test('set: not by 4.7.0', () => {
    assert.equal(matchRule(rules, GMAIL, reply(450, 'try later', '4.7.0')), undefined);
  });
  test('bounce: any destination (default "*"), case-insensitive', () => {
    assert.equal(matchRule(rules, 'example.test', reply(450, '<a@example.test>: User unknown in virtual mailbox table'))?.action, 'bounce');
    assert.equal(matchRule(rules, 'example.test', reply(450, 'mailbox busy')), undefined);
  });
  test('2xx never triggers, whatever the text', () => {
    assert.equal(matchRule(rules, 'example.test', reply(250, 'ok user unknown in virtual mailbox table')), undefined);
  });
  test('first matching rule wins (config order)', () => {
    const two = rulesOf([{ match: 'busy', action: 'bounce' }, { match: 'busy', action: 'suspend' }]);
    assert.equal(matchRule(two, 'x.test', reply(451, 'busy'))?.index, 0);
  });
  test('glob: * and ? only, everything else literal, whole key', () => {
    assert.ok(globToRegExp('mx:*.google.com*').test(GMAIL));
    assert.ok(!globToRegExp('mx:*.google.com').test(GMAIL + ',x.test'));
    assert.ok(globToRegExp('route:smtp?.test:25').test('route:smtp1.test:25'));
    assert.ok(!globToRegExp('a.b').test('axb'));
  });
});

describe('reply rules: what is in force', () => {
  const [suspend, set, bounce] = rulesOf([
    { match: 'x', action: 'suspend', for: '10m' },
    { match: 'y', action: 'set', max_connections: 1, for: '1h' },
    { match: 'z', action: 'bounce' },
  ]) as [ReturnType<typeof rulesOf>[number], ReturnType<typeof rulesOf>[number], ReturnType<typeof rulesOf>[number]];
  test('a trigger starts the period; a second trigger restarts it and keeps "since"', () => {
    let a = triggerRule([], suspend, reply(421, 'x'), 1000);
    assert.deepEqual(ruleEffect(a, 1000), { suspendedUntil: 1000 + 600_000 });
    a = triggerRule(a, suspend, reply(421, 'x again'), 5000);
    assert.equal(a.length, 1);
    assert.equal(a[0]!.since, 1000);
    assert.equal(a[0]!.until, 5000 + 600_000);
    assert.equal(a[0]!.reply, '421 x again');
  });
  test('expired rules say nothing and are dropped at the next trigger', () => {
    const a = triggerRule([], suspend, reply(421, 'x'), 0);
    assert.deepEqual(ruleEffect(a, 600_000), {});
    assert.equal(triggerRule(a, set, reply(451, 'y'), 700_000).length, 1);
  });
  test('set and suspend combine; bounce is not kept', () => {
    let a = triggerRule([], set, reply(451, 'y'), 0);
    a = triggerRule(a, suspend, reply(421, 'x'), 0);
    a = triggerRule(a, bounce, reply(450, 'z'), 0);
    assert.deepEqual(ruleEffect(a, 1), { maxConnections: 1, suspendedUntil: 600_000 });
    assert.deepEqual(a.map((x) => x.action), ['suspend', 'set']);
  });
});

describe('reply rules: config', () => {
  test('a bad regex, a set without limits, an unknown action are refused', () => {
    assert.throws(() => parseConfig({ delivery: { rules: [{ match: '(', action: 'bounce' }] } }), /regular expression/);
    assert.throws(() => parseConfig({ delivery: { rules: [{ match: 'x', action: 'set' }] } }), /max_connections or rate/);
    assert.throws(() => parseConfig({ delivery: { rules: [{ match: 'x', action: 'pause' }] } }));
  });
});

describe('examples/reply-rules.toml', () => {
  // Every rule uncommented must be a valid config, and each must catch the provider reply it is written for.
  const text = readFileSync(fileURLToPath(new URL('../../../examples/reply-rules.toml', import.meta.url)), 'utf8');
  const live = text.split('\n').map((l) => (/^#(\[\[|[a-z_]+ = )/.test(l) ? l.slice(1) : l)).join('\n');
  const rules = compileRules(parseConfig(parseToml(live)).delivery.rules);
  const GOOGLE = 'mx:alt1.aspmx.l.google.com,alt2.aspmx.l.google.com,aspmx.l.google.com';
  const YAHOO = 'mx:mta5.am0.yahoodns.net,mta6.am0.yahoodns.net,mta7.am0.yahoodns.net';
  const cases: [string, ReturnType<typeof reply>, string | undefined][] = [
    [GOOGLE, reply(421, 'Our system has detected an unusual rate of unsolicited mail originating from your IP address.', '4.7.28'), 'suspend'],
    [GOOGLE, reply(450, 'The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.', '4.2.1'), 'set'],
    [GOOGLE, reply(421, 'Try again later, closing connection. (EHLO)', '4.7.0'), 'set'],
    [GOOGLE, reply(452, 'Your message has too many recipients.', '4.5.3'), undefined],
    [YAHOO, reply(421, '[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1', '4.7.0'), 'suspend'],
    [YAHOO, reply(421, '[TS01] Messages from 192.0.2.1 temporarily deferred due to user complaints - 4.16.55.1', '4.7.0'), 'set'],
    [YAHOO, reply(451, 'Message temporarily deferred - [160]'), 'bounce'],
    ['mx:mx.example.test', reply(421, '[TSS04] Messages from 192.0.2.1 temporarily deferred', '4.7.0'), undefined],
  ];
  for (const [dest, r, want] of cases) {
    test(`${want ?? 'no rule'}: ${r.code} ${r.text.slice(0, 50)}`, () => assert.equal(matchRule(rules, dest, r)?.action, want));
  }
});
