/**
 * http/csrf's verdicts, one request shape at a time: DNS rebinding on a
 * token-less listener, browsers' cross-site and same-origin requests with and
 * without the page's token, and clients that are not browsers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csrfVerdict, isLoopbackHostHeader } from './csrf.js';

const TOKEN = 'page-token';
const ok = (method: string, headers: Record<string, string>, tokenRequired = false) => csrfVerdict(method, headers, TOKEN, tokenRequired).ok;

test('Host headers that name loopback, with or without a port', () => {
  for (const h of ['127.0.0.1:8025', '127.0.0.2', 'localhost:8025', 'LOCALHOST', '[::1]:8025', '[::1]']) assert.equal(isLoopbackHostHeader(h), true, h);
  for (const h of ['', 'evil.example:8025', '127.0.0.1.evil.example', '10.0.0.1:8025', '[::2]:80', 'localhost.evil.example']) assert.equal(isLoopbackHostHeader(h), false, h);
});

test('a token-less listener answers only to loopback names (DNS rebinding); with a token any Host will do', () => {
  assert.equal(ok('GET', { host: 'rebound.evil.example:8025' }), false);
  assert.equal(ok('POST', { host: 'rebound.evil.example:8025' }), false);
  assert.equal(ok('GET', { host: '127.0.0.1:8025' }), true);
  assert.equal(ok('GET', { host: 'mail.example.com:8025' }, true), true);
});

test('clients that are not browsers (no Origin, Sec-Fetch-Site or Referer) act without the page token', () => {
  assert.equal(ok('POST', { host: '127.0.0.1:8025', 'sec-fetch-mode': 'cors', 'user-agent': 'node' }), true);
  assert.equal(ok('DELETE', { host: 'mail.example.com' }, true), true);
});

test('a browser acts only same-origin and with the page token', () => {
  const same = { host: '127.0.0.1:8025', origin: 'http://127.0.0.1:8025', 'sec-fetch-site': 'same-origin' };
  assert.equal(ok('POST', { ...same, 'x-halcyon-csrf': TOKEN }), true);
  assert.equal(ok('POST', { host: '[::1]:8025', origin: 'http://[::1]:8025', 'x-halcyon-csrf': TOKEN }), true);
  assert.equal(ok('POST', same), false, 'no token');
  assert.equal(ok('POST', { ...same, 'x-halcyon-csrf': 'guess' }), false, 'wrong token');
  assert.equal(ok('POST', { ...same, 'sec-fetch-site': 'same-site', 'x-halcyon-csrf': TOKEN }), false, 'another port is another origin');
  assert.equal(ok('POST', { host: '127.0.0.1:8025', origin: 'http://evil.example', 'x-halcyon-csrf': TOKEN }), false);
  assert.equal(ok('POST', { host: '127.0.0.1:8025', origin: 'null', 'x-halcyon-csrf': TOKEN }), false);
  assert.equal(ok('POST', { host: '127.0.0.1:8025', 'sec-fetch-site': 'cross-site' }), false);
  assert.equal(ok('POST', { host: '127.0.0.1:8025', referer: 'http://127.0.0.1:8025/' }), false, 'a browser without Origin still needs the token');
  // Reading is not acting: a browser's GET needs no token (the same-origin policy keeps the answer from other sites).
  assert.equal(ok('GET', { host: '127.0.0.1:8025', origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' }), true);
});
