import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stsPlan, type StsPolicy } from './mta-sts.js';
import type { NextHop } from './resolve.js';

const hop = (host: string, address = '192.0.2.1'): NextHop => ({ host, address, port: 25, family: 4, preference: 10 });
const policy = (mode: StsPolicy['mode'], mx: string[]): StsPolicy => ({ id: '1', mode, mx, maxAgeS: 86400 });
const hops = [hop('mx1.example.test'), hop('mx1.example.test', '192.0.2.2'), hop('backup.other.test')];

test('no policy, or mode none: nothing changes', () => {
  assert.equal(stsPlan(undefined, hops, 'example.test').kind, 'none');
  assert.equal(stsPlan(policy('none', []), hops, 'example.test').kind, 'none');
});

test('enforce keeps only the MX hosts the policy names (wildcards match one label deep and more, as mailauth does)', () => {
  const p = stsPlan(policy('enforce', ['*.example.test']), hops, 'example.test');
  assert.equal(p.kind, 'enforce');
  if (p.kind === 'enforce') assert.deepEqual(p.hops.map((h) => h.address), ['192.0.2.1', '192.0.2.2']);
});

test('enforce with no matching MX host: no-match, naming the policy and the hosts', () => {
  const p = stsPlan(policy('enforce', ['mx.elsewhere.test']), hops, 'example.test');
  assert.equal(p.kind, 'no-match');
  if (p.kind === 'no-match') assert.equal(p.text, 'MTA-STS policy of example.test (mx: mx.elsewhere.test) matches no MX host (mx1.example.test, backup.other.test)');
});

test('testing keeps every hop and names the mismatched ones once', () => {
  const p = stsPlan(policy('testing', ['mx1.example.test']), hops, 'example.test');
  assert.equal(p.kind, 'testing');
  if (p.kind === 'testing') assert.deepEqual(p.mismatched, ['backup.other.test']);
});
