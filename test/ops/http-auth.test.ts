/**
 * test/ops/http-auth — the admin listener's token rule: loopback
 * (127.0.0.0/8, ::1) needs no token unless http.require_token; any other
 * address needs one, and the server refuses to start without it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { httpConfigProblems, isLoopbackHost } from '../../src/http/server.js';
import { runCli, startTestApp } from '../support/halcyon.js';
import { api } from './helpers.js';

test('isLoopbackHost: all of 127.0.0.0/8, ::1 and localhost; nothing else', () => {
  for (const h of ['127.0.0.1', '127.0.0.2', '127.255.255.254', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '192.0.2.1', 'example.test', '127.example.test']) assert.equal(isLoopbackHost(h), false, h);
});

test('httpConfigProblems: a token is needed off loopback, or with require_token', () => {
  assert.deepEqual(httpConfigProblems(parseConfig({ http: { listen: '127.0.0.2:8025' } })), []);
  assert.equal(httpConfigProblems(parseConfig({ http: { listen: '0.0.0.0:8025' } }))[0]?.path, 'http.token');
  assert.deepEqual(httpConfigProblems(parseConfig({ http: { listen: '0.0.0.0:8025', token: 't' } })), []);
  assert.equal(httpConfigProblems(parseConfig({ http: { listen: '127.0.0.1:8025', require_token: true } }))[0]?.path, 'http.token');
  assert.deepEqual(httpConfigProblems(parseConfig({ http: { listen: '0.0.0.0:8025', enabled: false } })), []);
});

describe('the admin listener', () => {
  test('serve and config check refuse a non-loopback listener without a token (a config error, exit 2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'halcyon-auth-'));
    try {
      const file = join(dir, 'h.toml');
      writeFileSync(file, `data_dir = "${dir}/var"\n[smtp]\nlisten = ["127.0.0.1:0"]\n[http]\nlisten = "0.0.0.0:0"\n`);
      const serve = await runCli(['serve', '--config', file]);
      assert.equal(serve.code, 2);
      assert.match(serve.stderr, /http\.token: a token is required/);
      const check = await runCli(['config', 'check', file]);
      assert.equal(check.code, 2);
      assert.match(check.stdout, /http\.token/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('with require_token: 401 without or with a wrong token, 200 with the right one', async () => {
    const t = await startTestApp({ http: { enabled: true, listen: '127.0.0.1:0', token: 's3cret', require_token: true } });
    try {
      const port = Number(t.app.httpAddress!.split(':').pop());
      for (const path of ['/api/queue', '/metrics', '/']) {
        const none = await api(port, 'GET', path);
        assert.equal(none.status, 401, path);
        assert.equal((await api(port, 'GET', path, undefined, 'wrong')).status, 401, path);
        assert.equal((await api(port, 'GET', path, undefined, 's3cret')).status, 200, path);
      }
      assert.equal((await api(port, 'POST', '/api/messages', { from: 'a@localhost', to: ['postmaster@localhost'], content: 'x' })).status, 401);
    } finally {
      await t.stop();
    }
  });

  test('on loopback without require_token no token is asked', async () => {
    const t = await startTestApp({ http: { enabled: true, listen: '127.0.0.1:0' } });
    try {
      const port = Number(t.app.httpAddress!.split(':').pop());
      assert.equal((await api(port, 'GET', '/api/queue')).status, 200);
    } finally {
      await t.stop();
    }
  });
});
