/**
 * Provider shaping on by default (issue 25), over real sockets: the remote
 * (test/support/remote-smtp) plays Gmail's rolling rate limit and Yahoo's
 * TSS04 at greeting; real DNS on loopback names the providers' MX hosts so
 * the shipped presets (data/providers.toml) match. Time is the scheduler
 * harness's fake clock, read by the remote too: "60 s" below is simulated
 * time (test/scheduler/provider-scenes). bench/shaping prints the same
 * scenes with and without the presets.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gmailScene, yahooScene } from './provider-scenes.js';

describe('provider shaping, with the defaults', () => {
  test('Gmail-style: 200 messages over ten domains on a Google MX that takes 10 per rolling 10 s', async () => {
    const g = await gmailScene({ presets: true });
    assert.ok(g.replies421In60 <= 5, `421-4.7.28 replies in 60 s: ${g.replies421In60}`);
    assert.ok(g.delivered60 >= g.allowed60 / 2, `delivered in 60 s: ${g.delivered60} of the ${g.allowed60} the remote allows`);
    // Nothing lost: every message delivered once, none failed.
    assert.equal(g.failed, 0);
    assert.equal(g.duplicates, 0);
    assert.equal(g.delivered, 200);
    // `halcyon destinations`: the preset, why, the limits, the adaptive rate and the provider's pause rule.
    assert.match(g.listing, /provider: google \(data\/providers\.toml\): gmail-smtp-in\.l\.google\.com matches \*\.google\.com/);
    assert.match(g.listing, /limits: \d+\/5 connections, 100 recipients per transaction, 50 messages per connection, [\d.]+ messages\/min/);
    assert.match(g.listing, /adaptive rate: [\d.]+\/min since a cut/);
  });

  test('rules act on the whole provider: the same storm through two Google MX sets draws no more 421s', async () => {
    const g = await gmailScene({ presets: true, twoMxSets: true });
    assert.ok(g.replies421In60 <= 5, `421-4.7.28 replies in 60 s: ${g.replies421In60}`);
    assert.ok(g.delivered60 >= g.allowed60 / 2, `delivered in 60 s: ${g.delivered60}`);
    assert.equal(g.delivered, 200);
    assert.equal(g.duplicates, 0);
  });

  test('Yahoo TSS04 at greeting: at most 3 connections in 60 s; delivery resumes once the remote recovers', async () => {
    const y = await yahooScene({ presets: true });
    assert.ok(y.connections60 <= 3, `connections in 60 s: ${y.connections60}`);
    assert.equal(y.failed, 0);
    assert.equal(y.delivered, y.total);
    assert.notEqual(y.resumedAfterMs, undefined, 'everything delivered after the recovery');
  });
});
