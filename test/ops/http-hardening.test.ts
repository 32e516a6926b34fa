/**
 * Small admin-listener defects (issue 10, item 6): `http.listen = ""`
 * disables the API as documented (it was a config error), and malformed
 * percent-encoding in a path is the client's error (400), not a 500.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { httpConfigProblems } from '../../src/http/server.js';
import { startTestApp } from '../support/halcyon.js';
import { api } from './helpers.js';

test('http.listen = "" is valid and starts no admin listener', async () => {
  assert.deepEqual(httpConfigProblems(parseConfig({ http: { listen: '' } })), [], 'no token demanded for a listener that does not exist');
  assert.throws(() => parseConfig({ http: { listen: 'nonsense' } }), /host:port/);
  const t = await startTestApp({ http: { enabled: true, listen: '' } });
  try {
    assert.equal(t.app.httpAddress, undefined);
    assert.deepEqual(t.app.listening.map((l) => l.kind), ['smtp']);
  } finally {
    await t.stop();
  }
});

test('malformed percent-encoding in an admin path answers 400', async () => {
  const t = await startTestApp({ http: { enabled: true, listen: '127.0.0.1:0' } });
  try {
    const port = Number(t.app.httpAddress!.split(':').pop());
    for (const path of ['/api/queue/%E2', '/api/queue/%zz', '/api/destinations/%/reset']) {
      const r = await api(port, path.endsWith('reset') ? 'POST' : 'GET', path);
      assert.equal(r.status, 400, `${path}: ${r.text}`);
      assert.match(r.text, /percent-encoding/);
    }
    assert.equal((await api(port, 'GET', '/api/queue/0000000000000000')).status, 404, 'a well-formed unknown id is still 404');
  } finally {
    await t.stop();
  }
});
