import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dmarcAction, type AuthSummary, type DmarcMode } from './dmarc-policy.js';

// One row per line of the table in dmarc-policy.ts.
const rows: [DmarcMode, AuthSummary, string][] = [
  ['tag', { dmarc: 'fail', policy: 'reject', temperror: false }, 'accept'],
  ['tag', { dmarc: 'temperror', temperror: true }, 'accept'],
  ['enforce', { dmarc: 'temperror', temperror: false }, 'tempfail 451 4.7.5'],
  ['enforce', { dmarc: 'fail', policy: 'reject', temperror: true }, 'tempfail 451 4.7.5'],
  ['enforce', { dmarc: 'fail', policy: 'quarantine', temperror: true }, 'tempfail 451 4.7.5'],
  ['enforce', { dmarc: 'fail', policy: 'reject', domain: 'x.test', temperror: false }, 'reject 550 5.7.1'],
  ['enforce', { dmarc: 'fail', policy: 'quarantine', temperror: false }, 'quarantine'],
  ['enforce', { dmarc: 'fail', policy: 'none', temperror: true }, 'accept'],
  ['enforce', { dmarc: 'pass', policy: 'reject', temperror: true }, 'accept'],
  ['enforce', { dmarc: 'none', temperror: false }, 'accept'],
  ['enforce', { dmarc: 'permerror', temperror: false }, 'accept'],
];

for (const [mode, summary, want] of rows) {
  test(`${mode} ${JSON.stringify(summary)} → ${want}`, () => {
    const a = dmarcAction(mode, summary);
    assert.equal(a.kind === 'reject' || a.kind === 'tempfail' ? `${a.kind} ${a.code} ${a.enhanced}` : a.kind, want);
    if (a.kind === 'reject') assert.match(a.text, /DMARC policy of x\.test/);
  });
}
