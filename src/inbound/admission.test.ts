import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionAdmission } from './admission.js';

test('per-IP before server-wide; a release frees a slot; mapped IPv4 is the same client', () => {
  const a = new ConnectionAdmission({ maxConnections: 3, maxConnectionsPerIp: 2 });
  assert.ok(a.admit('192.0.2.1', false).ok);
  assert.ok(a.admit('::ffff:192.0.2.1', false).ok);
  const third = a.admit('192.0.2.1', false);
  assert.ok(!third.ok && third.reason === 'per-ip');
  assert.ok(a.admit('192.0.2.2', false).ok);
  const full = a.admit('192.0.2.3', false);
  assert.ok(!full.ok && full.reason === 'server' && full.enhanced === '4.7.0');
  const both = a.admit('192.0.2.1', false);
  assert.ok(!both.ok && both.reason === 'per-ip', 'an address at its own limit hears about its address');
  a.release('::ffff:192.0.2.1');
  assert.equal(a.connectionsFrom('192.0.2.1'), 1);
  assert.ok(a.admit('192.0.2.3', false).ok);
  assert.equal(a.count, 3);
  const d = a.admit('192.0.2.9', true);
  assert.ok(!d.ok && d.reason === 'draining');
});
