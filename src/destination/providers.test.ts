/**
 * Provider shaping, line by line: the shipped file parses and covers the
 * providers docs/shaping.md lists; a destination is a provider's when every
 * MX host matches; operators override and disable per provider; a provider's
 * rules match only its destinations and act on its scope; AIMD cuts and
 * grows the rate; the gate's merge keeps the newer cut.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../config/load.js';
import { providersFor } from '../config/providers-file.js';
import { newerRate } from '../queue/destination-gate.js';
import { cutRate, grewRate, paced, perMinute } from './adaptive-rate.js';
import { Politeness } from './politeness.js';
import { matchProvider, Shaping } from './providers.js';

const GMAIL = 'mx:alt1.gmail-smtp-in.l.google.com,alt2.gmail-smtp-in.l.google.com,gmail-smtp-in.l.google.com';
const WORKSPACE = 'mx:alt1.aspmx.l.google.com,aspmx.l.google.com';
const YAHOO = 'mx:mta5.am0.yahoodns.net,mta6.am0.yahoodns.net,mta7.am0.yahoodns.net';

describe('the shipped presets (data/providers.toml)', () => {
  const presets = providersFor(parseConfig({}).shaping);
  test('at least 8 providers, each with a source for its numbers and for each rule', () => {
    assert.ok(presets.length >= 8, `${presets.length} providers`);
    for (const name of ['google', 'microsoft', 'yahoo', 'apple', 'comcast']) assert.ok(presets.some((p) => p.name === name), name);
    for (const p of presets) {
      assert.ok(p.limitsSource.length > 0, p.name);
      assert.ok(p.maxConnections !== undefined && p.maxMessagesPerConnection !== undefined && p.rate !== undefined && p.tls !== undefined, p.name);
      for (const r of p.rules) assert.match(r.source ?? '', /https?:\/\//, `${p.name}: ${r.match}`);
    }
  });
  test('every host of the MX set must match; why names each', () => {
    assert.equal(matchProvider(presets, GMAIL)?.preset.name, 'google');
    assert.match(matchProvider(presets, WORKSPACE)?.why ?? '', /aspmx\.l\.google\.com matches \*\.google\.com/);
    assert.equal(matchProvider(presets, YAHOO)?.preset.name, 'yahoo');
    assert.equal(matchProvider(presets, 'mx:mx1.example.com,aspmx.l.google.com'), undefined, 'a mixed set is nobody\'s');
    assert.equal(matchProvider(presets, 'mx:google.com.evil.test'), undefined);
    assert.equal(matchProvider(presets, 'route:smarthost'), undefined);
    assert.equal(matchProvider(presets, 'example.com-mail.protection.outlook.com'), undefined, 'not an mx: key');
    assert.equal(matchProvider(presets, 'mx:example-com.mail.protection.outlook.com')?.preset.name, 'microsoft');
  });
});

describe('operators override and disable per provider', () => {
  test('a field overridden, a provider off, one of their own, all off', () => {
    const cfg = parseConfig({ shaping: { providers: { google: { max_connections: 2, rate: '60/min' }, yahoo: { enabled: false }, acme: { mx: ['*.acme.test'], rate: '10/min' } } } });
    const s = new Shaping(() => cfg);
    assert.equal(s.of(GMAIL).maxConnections, 2);
    assert.equal(perMinute(s.of(GMAIL).rate!), 60);
    assert.equal(s.of(GMAIL).maxMessagesPerConnection, 50, 'the rest as shipped');
    assert.match(s.of(GMAIL).provider!.preset.origin, /overridden/);
    assert.equal(s.of(YAHOO).provider, undefined);
    assert.equal(s.of(YAHOO).scope, YAHOO);
    assert.equal(s.of('mx:in1.acme.test').provider?.preset.name, 'acme');
    const off = new Shaping(() => parseConfig({ shaping: { enabled: false } }));
    assert.equal(off.of(GMAIL).provider, undefined);
    assert.throws(() => providersFor(parseConfig({ shaping: { providers: { nomx: { rate: '1/min' } } } }).shaping), /needs mx/);
  });
});

describe('rules act on the whole provider', () => {
  test('a TSS04 through one Yahoo MX set suspends every Yahoo destination, and only those', () => {
    let now = 1_000;
    const cfg = parseConfig({});
    const p = new Politeness(() => cfg, () => now);
    const other = 'mx:mta5.am0.yahoodns.net';
    const hit = p.onReply(YAHOO, { code: 421, enhanced: '4.7.0', text: '[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints' });
    assert.equal(hit?.rule.action, 'suspend');
    assert.equal(hit?.scope, 'provider:yahoo');
    assert.equal(p.suspendedUntil(YAHOO), now + 30 * 60_000);
    assert.equal(p.suspendedUntil(other), now + 30 * 60_000, 'another MX set of the provider');
    assert.equal(p.suspendedUntil(GMAIL), undefined);
    assert.equal(p.onReply('mx:mx.example.test', { code: 421, enhanced: '4.7.0', text: '[TSS04] deferred' }), undefined, 'not Yahoo: the rule does not apply');
    now += 30 * 60_000;
    assert.equal(p.suspendedUntil(other), undefined);
  });

  test('Gmail 421-4.7.28 cuts the provider\'s rate by half and pauses it 10 s; deliveries grow it back', () => {
    let now = 0;
    const cfg = parseConfig({});
    const p = new Politeness(() => cfg, () => now);
    assert.equal(perMinute(p.rate(GMAIL)!), 600, 'the preset\'s paced rate');
    const hit = p.onReply(WORKSPACE, { code: 421, enhanced: '4.7.28', text: '[192.0.2.1] Our system has detected an unusual rate of unsolicited mail originating from your IP address.' });
    assert.equal(hit?.rule.action, 'slow_down');
    assert.equal(hit?.rate, 300);
    assert.equal(perMinute(p.rate(GMAIL)!), 300, 'the other Google MX set too');
    assert.equal(p.suspendedUntil(GMAIL), 10_000);
    now = 10_000;
    for (let i = 0; i < 300; i++) p.delivered(GMAIL);
    assert.ok(Math.abs(perMinute(p.rate(GMAIL)!) - 306) < 0.1, `a minute's worth of deliveries adds 6/min: ${perMinute(p.rate(GMAIL)!)}`);
    const shared = p.shared('provider:google');
    assert.equal(shared?.rate?.cutAt, 0);
  });

  test('Microsoft 451 4.7.500 server busy slows down; 450 4.2.1 (one Gmail user) triggers nothing', () => {
    const cfg = parseConfig({});
    const p = new Politeness(() => cfg, () => 0);
    assert.equal(p.onReply('mx:contoso-com.mail.protection.outlook.com', { code: 451, enhanced: '4.7.500', text: 'Server busy. Please try again later from [192.0.2.1]. (S77719)' })?.rule.action, 'slow_down');
    assert.equal(p.onReply(GMAIL, { code: 450, enhanced: '4.2.1', text: 'The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.' }), undefined);
  });
});

describe('adaptive rate (AIMD)', () => {
  test('cut multiplies, never below 1/min; growth is additive per minute of deliveries, capped', () => {
    const r = cutRate(100, 0.5, '421', 0, 60_000);
    assert.deepEqual(r, { perMinute: 50, cutAt: 0, until: 60_000, reply: '421' });
    assert.equal(cutRate(1, 0.5, 'x', 0, 1).perMinute, 1);
    let g = r;
    for (let i = 0; i < 50; i++) g = grewRate(g, 10, 55, 1)!;
    assert.ok(g.perMinute > 54 && g.perMinute <= 55);
    assert.equal(grewRate(r, 10, undefined, 60_000), undefined, 'expired');
    assert.deepEqual(paced(120), { count: 1, perMs: 500 });
  });
  test('across nodes the later cut wins; from the same cut, the higher', () => {
    const a = { perMinute: 80, cutAt: 10, until: 1e9, reply: 'a' };
    const b = { perMinute: 40, cutAt: 20, until: 1e9, reply: 'b' };
    assert.equal(newerRate(a, b, 0), b);
    assert.equal(newerRate(b, a, 0), b);
    assert.equal(newerRate(b, { ...b, perMinute: 45 }, 0)?.perMinute, 45);
    assert.equal(newerRate(b, { ...b, perMinute: 30 }, 0)?.perMinute, 40);
    assert.equal(newerRate({ ...b, until: 5 }, a, 10), a);
  });
});

describe('from a source address (destination/key sourced keys)', () => {
  test('the provider is matched without the source; its scope is per source; rule globs see the destination', () => {
    const shaping = new Shaping(() => parseConfig({}));
    assert.equal(shaping.of(`${GMAIL}@ip2`).provider?.preset.name, 'google');
    assert.equal(shaping.scopeOf(`${GMAIL}@ip2`), 'provider:google@ip2');
    assert.equal(shaping.scopeOf(`${WORKSPACE}@ip3`), 'provider:google@ip3', 'another source: another scope');
    assert.equal(shaping.scopeOf(GMAIL), 'provider:google', 'without a source, as before');
    assert.equal(shaping.scopeOf('route:127.0.0.1:25@ip2'), 'route:127.0.0.1:25@ip2', 'no provider: the key itself');
    const own = new Politeness(() => parseConfig({ delivery: { rules: [{ destination: 'route:*:25', code: 421, match: 'busy', action: 'suspend', for: '1h' }] } }), () => 0);
    assert.equal(own.ruleOf('route:127.0.0.1:25@ip2', { code: 421, text: 'busy' })?.action, 'suspend', 'the glob is matched on the destination');
  });

  test('a provider rule triggered through one source pauses that source\'s scope only', () => {
    const p = new Politeness(() => parseConfig({}), () => 1_000);
    const hit = p.onReply(`${GMAIL}@ip2`, { code: 421, enhanced: '4.7.28', text: 'Our system has detected an unusual rate of unsolicited mail originating from your IP address.' });
    assert.equal(hit?.scope, 'provider:google@ip2');
    assert.ok((p.suspendedUntil(`${WORKSPACE}@ip2`) ?? 0) > 1_000, 'every Google destination from ip2 pauses');
    assert.equal(p.suspendedUntil(`${GMAIL}@ip3`), undefined, 'not from ip3');
    assert.equal(p.suspendedUntil(GMAIL), undefined, 'nor without a source');
  });
});
