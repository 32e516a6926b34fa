import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { NewMessage } from '../queue/model.js';
import { compose, Intake, senderOf, type Origin, type Submission } from './intake.js';

const NOW = Date.UTC(2026, 10, 30, 9, 0, 0);

function submission(origin: Origin, content: string, recipients = ['r@x.test']): Submission {
  return {
    origin, sender: 's@a.test', params: { smtputf8: false },
    trace: { clientIp: '192.0.2.7', clientHelo: 'client.a.test', protocol: 'ESMTP' },
    content: Buffer.from(content, 'latin1'),
    recipients: recipients.map((address) => ({ address, destination: 'x.test' })),
  };
}

const text = (sub: Submission, stamp: Parameters<typeof compose>[1]): string => compose(sub, stamp).toString('latin1');

describe('compose', () => {
  const stamp = { id: 'Q1', now: NOW, hostname: 'mx.h.test' };
  test('MX mail gets our Received header naming the queue id and the one recipient, nothing else', () => {
    const p = text(submission('smtp', 'Subject: s\r\n\r\nbody\r\n'), stamp);
    assert.match(p, /^Received: from client\.a\.test \(\[192\.0\.2\.7\]\)\r\n\tby mx\.h\.test \(Halcyon\) with ESMTP id Q1\r\n\tfor <r@x\.test>; Mon, 30 Nov 2026 09:00:00 \+0000\r\nSubject: s\r\n\r\nbody\r\n$/);
  });
  test('two recipients: the Received header names none', () => {
    assert.doesNotMatch(text(submission('smtp', 'x\r\n', ['a@x.test', 'b@x.test']), stamp), /for </);
  });
  test('a local submission missing Message-ID and Date gets both; one that has them gets neither', () => {
    for (const origin of ['submission', 'local'] as const) {
      const p = text(submission(origin, 'Subject: s\r\n\r\nbody\r\n'), stamp);
      assert.match(p, /^Message-ID: <[^>]+@mx\.h\.test>\r\n/m, origin);
      assert.match(p, /^Date: Mon, 30 Nov 2026 09:00:00 \+0000\r\n/m, origin);
      const q = text(submission(origin, 'Message-ID: <m@a>\r\nDate: yesterday\r\n\r\nbody\r\n'), stamp);
      assert.equal(q.match(/^(Message-ID|Date):/gim)?.length, 2, origin);
    }
  });
  test('MX mail is not completed: a message without Message-ID stays without', () => {
    assert.doesNotMatch(text(submission('smtp', 'Subject: s\r\n\r\nbody\r\n'), stamp), /^(Message-ID|Date):/im);
  });
  test('a report (DSN) gets no Received header: it is born here', () => {
    assert.equal(text(submission('report', 'Date: x\r\nMessage-ID: <m@h>\r\n\r\nbody\r\n'), stamp), 'Date: x\r\nMessage-ID: <m@h>\r\n\r\nbody\r\n');
  });
});

describe('Intake.accept', () => {
  test('queues the composed message under the id the Received header names, with the time of the clock', async () => {
    const written: NewMessage[] = [];
    const intake = new Intake({
      store: { newId: () => 'Q42', enqueue: async (m) => { written.push(m); return m.id!; }, enqueueGroup: async () => { throw new Error('not here'); } },
      hostname: () => 'mx.h.test', clock: () => NOW,
    });
    const content = 'Subject: s\r\n\r\nbody\r\n';
    const r = await intake.accept({ ...submission('smtp', content), dsnFor: 'OLD' });
    assert.equal(r.id, 'Q42');
    assert.equal(written.length, 1);
    const m = written[0]!;
    assert.equal(m.id, 'Q42');
    assert.equal(m.receivedAt, NOW);
    assert.equal(m.dsnFor, 'OLD');
    const queued = m.body.toString('latin1');
    assert.match(queued, /^Received: [^]*id Q42\r\n\tfor <r@x\.test>; [^\r]+\r\nSubject: s\r\n\r\nbody\r\n$/);
    assert.equal(r.size, m.body.length);
  });
  test('a failed queue write rejects and reports nothing accepted', async () => {
    const intake = new Intake({
      store: { newId: () => 'Q1', enqueue: async () => { throw new Error('disk full'); }, enqueueGroup: async () => { throw new Error('disk full'); } },
      hostname: () => 'h', clock: () => NOW,
    });
    await assert.rejects(intake.accept(submission('local', 'x\r\n')), /disk full/);
  });
});

describe('compose: authentication results', () => {
  const stamp = { id: 'Q1', now: NOW, hostname: 'mx.h.test' };
  test('a forged Authentication-Results naming us and any quarantine mark are removed; others stay', () => {
    const content = 'Authentication-Results: MX.H.TEST;\r\n\tdkim=pass\r\nAuthentication-Results: other.test; spf=pass\r\n'
      + 'X-Halcyon-Quarantine: dmarc=fail\r\nSubject: s\r\n\r\nAuthentication-Results: mx.h.test; in the body stays\r\n';
    const out = text({ ...submission('smtp', content), authResults: 'Authentication-Results: mx.h.test; spf=pass\r\n' }, stamp);
    assert.equal(out.match(/^Authentication-Results: mx\.h\.test;/gim)?.length, 2, 'ours on top, and the one in the body');
    assert.ok(out.startsWith('Authentication-Results: mx.h.test; spf=pass\r\nReceived: '));
    assert.doesNotMatch(out, /dkim=pass|X-Halcyon-Quarantine/i);
    assert.match(out, /^Authentication-Results: other\.test; spf=pass\r\nSubject: s\r\n\r\n/m);
  });
  test('a quarantined message carries the mark', () => {
    assert.match(text({ ...submission('smtp', 'Subject: s\r\n\r\nb\r\n'), quarantine: true }, stamp), /^X-Halcyon-Quarantine: dmarc=fail/m);
  });
});

describe('tenant and campaign (senderOf, compose)', () => {
  const stamp = { id: 'Q1', now: NOW, hostname: 'mx.h.test' };
  const headed = 'X-Halcyon-Tenant: acme\r\nX-Halcyon-Campaign:\r\n spring\r\nSubject: s\r\n\r\nX-Halcyon-Tenant: body stays\r\n';
  test('an AUTH user: its headers name tenant and campaign; without them the user (or its configured tenant) is the tenant', () => {
    const authed = { ...submission('submission', headed), trace: { ...submission('submission', headed).trace, authUser: 'alice' } };
    assert.deepEqual(senderOf(authed), { tenant: 'acme', campaign: 'spring' });
    const plain = { ...authed, content: Buffer.from('Subject: s\r\n\r\nb\r\n') };
    assert.deepEqual(senderOf(plain), { tenant: 'alice' });
    assert.deepEqual(senderOf(plain, (u) => (u === 'alice' ? 'Acme Corp' : undefined)), { tenant: 'Acme Corp' });
  });
  test('the injection API\'s fields win; an unauthenticated client\'s headers count for nothing', () => {
    assert.deepEqual(senderOf({ ...submission('local', headed), tenant: 'api', campaign: 'c1' }), { tenant: 'api', campaign: 'c1' });
    assert.deepEqual(senderOf(submission('smtp', headed)), {});
  });
  test('the headers are removed from every message, above the body only', () => {
    for (const origin of ['smtp', 'submission', 'local'] as const) {
      const out = text(submission(origin, headed), stamp);
      assert.doesNotMatch(out.slice(0, out.indexOf('\r\n\r\n')), /X-Halcyon-(Tenant|Campaign)/i, origin);
      assert.match(out, /\r\n\r\nX-Halcyon-Tenant: body stays\r\n$/);
    }
  });
  test('acceptGroup writes every message and the key row in one enqueueGroup, the key made from the ids', async () => {
    const calls: { ids: (string | undefined)[]; key: unknown }[] = [];
    let n = 0;
    const intake = new Intake({
      store: { newId: () => `Q${++n}`, enqueue: async () => { throw new Error('not here'); }, enqueueGroup: async (ms, key) => { calls.push({ ids: ms.map((m) => m.id), key }); return ms.map((m) => m.id!); } },
      hostname: () => 'h', clock: () => NOW,
    });
    const acc = await intake.acceptGroup([{ ...submission('local', 'Subject: a\r\n\r\nx\r\n'), tenant: 't' }, submission('local', 'Subject: b\r\n\r\nx\r\n')],
      (a) => ({ token: 'tok', key: 'k', bodyHash: 'h', state: 'accepted', status: 201, response: JSON.stringify(a.map((x) => x.id)), createdAt: NOW }));
    assert.deepEqual(acc.map((a) => [a.id, a.tenant]), [['Q1', 't'], ['Q2', undefined]]);
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]!.ids, ['Q1', 'Q2']);
    assert.equal((calls[0]!.key as { response: string }).response, '["Q1","Q2"]');
  });
});
