import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rememberedRefusal } from './recipient-memory.js';
import type { SuppressionEntry } from '../queue/suppression.js';

const entry: SuppressionEntry = {
  address: 'gone@example.test', class: 'InvalidRecipient', since: Date.UTC(2026, 11, 1), until: Date.UTC(2026, 11, 31),
  source: 'bounce', reply: { code: 550, enhanced: '5.1.1', text: 'User unknown' },
};

test('recipient memory: the suppression list answers first, and verification is then not asked', async () => {
  let probes = 0;
  const r = await rememberedRefusal({
    suppressed: async () => entry,
    verifyRecipient: async () => { probes++; return { kind: 'accept' }; },
  }, 'gone@example.test', 'example.test');
  assert.equal(r?.reason, 'suppressed');
  assert.deepEqual(r?.reply.slice(0, 2), [550, '5.1.1']);
  assert.match(r?.reply[2] ?? '', /^<gone@example\.test>: recipient suppressed since 2026-12-01/);
  assert.equal(probes, 0);
});

test('recipient memory: a verification refusal passes through; an accept, or no lookups at all, refuse nothing', async () => {
  const refused = await rememberedRefusal({
    suppressed: async () => undefined,
    verifyRecipient: async () => ({ kind: 'refuse', code: 450, enhanced: '4.1.1', text: 'in progress', reason: 'unverified' }),
  }, 'new@example.test', 'example.test');
  assert.deepEqual(refused, { reason: 'unverified', reply: [450, '4.1.1', 'in progress'] });
  assert.equal(await rememberedRefusal({ verifyRecipient: async () => ({ kind: 'accept' }) }, 'a@example.test', 'example.test'), undefined);
  assert.equal(await rememberedRefusal({}, 'a@example.test', 'example.test'), undefined);
});
