import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentRefusal } from './content-checks.js';
import type { DataFlags } from '../smtp/data.js';

const clean: DataFlags = { tooBig: false, nul: false, bareCr: false, bareLf: false, longLine: false };
const limits = { bareNewline: 'reject' as const, maxReceivedHeaders: 3 };
const body = (received: number): Buffer => Buffer.from(`${'Received: from x\r\n'.repeat(received)}Subject: s\r\n\r\nbody\r\n`);

test('content checks: each flag and the loop count earn their refusal; clean content none', () => {
  assert.equal(contentRefusal(body(0), clean, limits), undefined);
  assert.equal(contentRefusal(body(0), { ...clean, tooBig: true }, limits)?.reply[0], 552);
  assert.deepEqual(contentRefusal(body(0), { ...clean, nul: true }, limits)?.reply.slice(0, 2), [550, '5.6.0']);
  assert.equal(contentRefusal(body(0), { ...clean, bareLf: true }, limits)?.reason, 'bare_newline');
  assert.equal(contentRefusal(body(0), { ...clean, bareLf: true }, { ...limits, bareNewline: 'normalize' }), undefined);
  assert.equal(contentRefusal(body(0), { ...clean, longLine: true }, limits)?.reason, 'long_line');
  assert.equal(contentRefusal(body(2), clean, limits), undefined);
  assert.equal(contentRefusal(body(3), clean, limits)?.reason, 'loop');
  // The first refusal wins: too big before NUL.
  assert.equal(contentRefusal(body(5), { ...clean, tooBig: true, nul: true }, limits)?.reason, 'too_big');
});
