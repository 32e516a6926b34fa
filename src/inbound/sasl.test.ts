import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { saslContinue, saslStart } from './sasl.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('SASL exchanges', () => {
  test('PLAIN with and without an initial response', () => {
    assert.deepEqual(saslStart('PLAIN', b64('\0alice\0pw')), { kind: 'done', credentials: { user: 'alice', password: 'pw' } });
    const c = saslStart('PLAIN', undefined);
    assert.equal(c.kind, 'challenge');
    assert.ok(c.kind === 'challenge');
    assert.deepEqual(saslContinue(c.state, b64('\0alice\0pw')), { kind: 'done', credentials: { user: 'alice', password: 'pw' } });
    assert.equal((saslStart('PLAIN', '=') as { code: number }).code, 501);
  });
  test('LOGIN asks for user then password', () => {
    const u = saslStart('LOGIN', undefined);
    assert.ok(u.kind === 'challenge' && u.text === 'VXNlcm5hbWU6');
    const p = saslContinue(u.state, b64('bob'));
    assert.ok(p.kind === 'challenge' && p.text === 'UGFzc3dvcmQ6');
    assert.deepEqual(saslContinue(p.state, b64('secret')), { kind: 'done', credentials: { user: 'bob', password: 'secret' } });
  });
  test('cancel, garbage and unknown mechanisms are errors with their codes', () => {
    assert.deepEqual(saslContinue({ mechanism: 'LOGIN' }, '*'), { kind: 'error', code: 501, enhanced: '5.0.0', text: 'Authentication cancelled' });
    assert.equal((saslContinue({ mechanism: 'LOGIN' }, '!!!') as { code: number }).code, 501);
    assert.equal((saslStart('CRAM-MD5', undefined) as { code: number }).code, 504);
  });
});
