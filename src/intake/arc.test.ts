import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { arcPlan } from './arc.js';
import type { DkimKey } from './dkim.js';

const key = (domain: string): DkimKey => ({
  domain, selector: 's', algorithm: 'rsa-sha256', headers: [],
  privateKey: generateKeyPairSync('ed25519').privateKey,
}) as unknown as DkimKey; // headers' exact shape does not matter to the plan
const keys = [key('first.test'), key('fwd.test'), key('sub.fwd.test')];
const AR = 'Authentication-Results: mx.test;\r\n\tspf=pass smtp.mailfrom=a@s.test;\r\n\tdkim=pass header.d=s.test\r\n';
const base = { fromOutside: true, forwardedBy: ['fwd.test'], authResults: AR, chain: 'none' as const };

test('arcPlan: seals only forwarded, verified mail from outside whose chain did not fail', () => {
  assert.deepEqual(arcPlan({ ...base, fromOutside: false }, keys), { seal: false, why: 'not mail from outside' });
  assert.deepEqual(arcPlan({ ...base, forwardedBy: [] }, keys), { seal: false, why: 'not forwarded' });
  assert.deepEqual(arcPlan({ fromOutside: true, forwardedBy: ['fwd.test'] }, keys), { seal: false, why: 'not verified' });
  assert.deepEqual(arcPlan(base, []), { seal: false, why: 'no [[arc]] key' });
  assert.deepEqual(arcPlan({ ...base, chain: 'fail' }, keys), { seal: false, why: 'the incoming ARC chain failed' });
  const p = arcPlan({ ...base, chain: 'pass' }, keys);
  assert.equal(p.seal, true);
  if (p.seal) {
    assert.equal(p.cv, 'pass');
    assert.equal(p.authResults, 'mx.test; spf=pass smtp.mailfrom=a@s.test; dkim=pass header.d=s.test');
  }
});

test('arcPlan: the key of the forwarding domain or its nearest parent, else the first', () => {
  const pick = (d: string) => { const p = arcPlan({ ...base, forwardedBy: [d] }, keys); return p.seal ? p.key.domain : p.why; };
  assert.equal(pick('fwd.test'), 'fwd.test');
  assert.equal(pick('a.sub.fwd.test'), 'sub.fwd.test');
  assert.equal(pick('elsewhere.test'), 'first.test');
});
