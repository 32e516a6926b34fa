/**
 * Inbound verification on the MX listener, against a real DNS server on
 * loopback serving SPF, DKIM and DMARC records: SPF pass/fail/softfail/
 * temperror, a dkimpy-signed message verifying, one Authentication-Results
 * naming our hostname (a forged one removed), and `[inbound] dmarc`:
 * "enforce" refuses p=reject with 550 5.7.1 (nothing queued), quarantines
 * p=quarantine into the mailbox's Junk folder, and answers 451 4.7.5 when DNS
 * cannot decide; "tag" only writes the header. Mail from [relay] networks is
 * not verified.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dkimTxtRecord } from '../../src/intake/dkim.js';
import { dkimpySign, haveDkimpy } from '../support/dkim-peers.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { haveTool, startTestApp, TEST_HOSTNAME, type TestApp } from '../support/halcyon.js';
import { waitUntil } from '../support/postfix.js';
import { queuedId, RawSmtpClient, type Reply } from '../support/smtp-client.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const KEY_PEM = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();

const ZONE = {
  'pass.test': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
  'fail.test': { TXT: ['v=spf1 ip4:192.0.2.1 -all'] },
  'soft.test': { TXT: ['v=spf1 ip4:192.0.2.1 ~all'] },
  'broken.test': 'SERVFAIL' as const,
  'client.pass.test': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
  'signed.test': { TXT: ['v=spf1 ip4:192.0.2.1 -all'] },
  'sel._domainkey.signed.test': { TXT: [dkimTxtRecord(publicKey)] },
  '_dmarc.signed.test': { TXT: ['v=DMARC1; p=reject'] },
  'reject.test': { TXT: ['v=spf1 ip4:192.0.2.1 -all'] },
  '_dmarc.reject.test': { TXT: ['v=DMARC1; p=reject'] },
  'quar.test': { TXT: ['v=spf1 ip4:192.0.2.1 -all'] },
  '_dmarc.quar.test': { TXT: ['v=DMARC1; p=quarantine'] },
  'undecided.test': { TXT: ['v=spf1 ip4:192.0.2.1 -all'] },
  '_dmarc.undecided.test': 'SERVFAIL' as const,
};

const MAILBOX = 'box@ours.test';

function message(from: string, subject: string, extra = ''): string {
  return `${extra}From: <${from}>\r\nTo: <${MAILBOX}>\r\nSubject: ${subject}\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W+/g, '-')}@client.test>\r\n\r\nHello.\r\n`;
}

/** One transaction; the end-of-data reply. */
async function send(port: number, from: string, content: string, helo = 'client.pass.test'): Promise<Reply> {
  const c = await RawSmtpClient.connect(port);
  try {
    await c.read();
    await c.expect(`EHLO ${helo}`, 250);
    await c.expect(`MAIL FROM:<${from}>`, 250);
    await c.expect(`RCPT TO:<${MAILBOX}>`, 250);
    await c.expect('DATA', 354);
    c.write(content.replace(/^\./gm, '..'));
    return await c.cmd('.', 20_000);
  } finally {
    c.close();
  }
}

async function queued(h: TestApp, r: Reply): Promise<string> {
  const id = queuedId(r);
  assert.ok(id, `accepted: ${r.code} ${r.lines.join(' ')}`);
  return (await h.app.store.messages.getBody(id)).toString('latin1');
}

/** The Authentication-Results headers of a stored message, unfolded. */
const authResults = (raw: string): string[] =>
  (raw.slice(0, raw.indexOf('\r\n\r\n')).match(/^Authentication-Results:.*(\r\n[ \t].*)*/gim) ?? []).map((h) => h.replace(/\r\n[ \t]+/g, ' '));

let dns: TestDnsServer;
before(async () => { dns = await startDnsServer(ZONE); });
after(() => dns.close());

function appWith(dmarc: 'tag' | 'enforce'): Promise<TestApp> {
  return startTestApp({
    relay: { networks: [] },
    domains: [{ name: 'ours.test', mailboxes: [{ user: 'box' }] }],
    dns: { servers: [dns.address], timeout: '1s' },
    inbound: { dmarc },
    delivery: { queue_scan_interval: '100ms' },
  });
}

describe('dmarc = "tag"', () => {
  let h: TestApp;
  before(async () => { h = await appWith('tag'); });
  after(() => h.stop());

  const spfCases: [string, string][] = [['pass.test', 'pass'], ['fail.test', 'fail'], ['soft.test', 'softfail'], ['broken.test', 'temperror']];
  for (const [domain, result] of spfCases) {
    test(`SPF ${result} for MAIL FROM at ${domain}: one Authentication-Results naming our hostname`, async () => {
      const raw = await queued(h, await send(h.port, `a@${domain}`, message(`a@${domain}`, `spf ${result}`)));
      const ar = authResults(raw);
      assert.equal(ar.length, 1, ar.join('\n'));
      assert.match(ar[0]!, new RegExp(`^Authentication-Results: ${TEST_HOSTNAME.replace(/\./g, '\\.')};`));
      assert.match(ar[0]!, new RegExp(`spf=${result}\\b[^;]*smtp\\.mailfrom=a@${domain.replace(/\./g, '\\.')}`));
    });
  }

  test('SPF on HELO has its own result', async () => {
    const raw = await queued(h, await send(h.port, 'a@fail.test', message('a@fail.test', 'helo check'), 'client.pass.test'));
    assert.match(authResults(raw)[0]!, /spf=pass smtp\.helo=client\.pass\.test/);
  });

  test('a message signed by dkimpy verifies: dkim=pass and DMARC passes through the aligned signature', async (t) => {
    if (!haveTool(t, haveDkimpy(), 'python3-dkim (dkimpy)')) return;
    const signed = dkimpySign(Buffer.from(message('a@signed.test', 'signed by dkimpy')), 'sel', 'signed.test', KEY_PEM);
    const raw = await queued(h, await send(h.port, 'a@signed.test', signed.toString('latin1')));
    const ar = authResults(raw)[0]!;
    assert.match(ar, /dkim=pass[^;]*header\.i=@signed\.test header\.s=sel/);
    assert.match(ar, /spf=fail/, 'SPF fails (the client is not in signed.test\'s record) …');
    assert.match(ar, /dmarc=pass/, '… and DMARC passes on the DKIM signature alone');
  });

  test('a forged Authentication-Results naming us is removed; one naming another host stays', async () => {
    const forged = `Authentication-Results: ${TEST_HOSTNAME}; dkim=pass header.d=bank.test; dmarc=pass\r\nAuthentication-Results: mx.elsewhere.test; spf=pass\r\n`;
    const raw = await queued(h, await send(h.port, 'a@fail.test', message('a@fail.test', 'forged results', forged)));
    const ar = authResults(raw);
    assert.equal(ar.filter((x) => x.includes(`: ${TEST_HOSTNAME};`)).length, 1, ar.join('\n'));
    assert.doesNotMatch(raw, /header\.d=bank\.test/);
    assert.match(raw, /^Authentication-Results: mx\.elsewhere\.test; spf=pass\r\n/m);
  });

  test('p=reject is only tagged: accepted with dmarc=fail', async () => {
    const raw = await queued(h, await send(h.port, 'a@reject.test', message('a@reject.test', 'tagged reject')));
    assert.match(authResults(raw)[0]!, /dmarc=fail/);
  });
});

describe('dmarc = "enforce"', () => {
  let h: TestApp;
  // No scheduler loop: "nothing queued" is read from a queue nobody else empties; the quarantine test delivers by hand.
  before(async () => { h = await appWith('enforce'); });
  after(() => h.stop());

  test('p=reject and failing: 550 5.7.1 at end of data, nothing queued', async () => {
    const before = (await h.app.store.recipients.counts()).messages;
    const r = await send(h.port, 'a@reject.test', message('a@reject.test', 'enforced reject'));
    assert.equal(r.code, 550);
    assert.equal(r.enhanced, '5.7.1');
    assert.match(r.lines.join(' '), /DMARC/);
    assert.equal((await h.app.store.recipients.counts()).messages, before);
  });

  test('p=quarantine and failing: accepted, marked, delivered into the Junk folder', async () => {
    const r = await send(h.port, 'a@quar.test', message('a@quar.test', 'enforced quarantine'));
    assert.ok(queuedId(r), `${r.code} ${r.lines.join(' ')}`);
    const junk = join(h.dataDir, 'mailboxes', 'ours.test', 'box', '.Junk', 'new');
    await waitUntil(async () => {
      await h.app.qmgr.runOnce();
      try { return readdirSync(junk).length === 1; } catch { return false; }
    }, 'the message in .Junk/new');
    assert.deepEqual(readdirSync(join(h.dataDir, 'mailboxes', 'ours.test', 'box', 'new')), [], 'nothing in the inbox');
    const raw = readFileSync(join(junk, readdirSync(junk)[0]!), 'latin1');
    assert.match(raw, /^X-Halcyon-Quarantine: dmarc=fail/m);
    assert.match(authResults(raw)[0]!, /dmarc=fail/);
  });

  test('DNS cannot tell the policy (SERVFAIL on _dmarc): 451 4.7.5, nothing queued, no crash', async () => {
    const before = (await h.app.store.recipients.counts()).messages;
    const r = await send(h.port, 'a@undecided.test', message('a@undecided.test', 'undecided'));
    assert.equal(r.code, 451);
    assert.equal(r.enhanced, '4.7.5');
    assert.equal((await h.app.store.recipients.counts()).messages, before);
    // The listener still serves: a passing message goes through.
    assert.ok(queuedId(await send(h.port, 'a@pass.test', message('a@pass.test', 'after the failure'))));
  });
});

test('mail from a [relay] networks client is not verified (no Authentication-Results, no DNS asked)', async () => {
  const h = await startTestApp({ domains: [{ name: 'ours.test', mailboxes: [{ user: 'box' }] }], dns: { servers: [dns.address], timeout: '1s' }, inbound: { dmarc: 'enforce' } });
  try {
    const asked = dns.queries.length;
    const raw = await queued(h, await send(h.port, 'a@reject.test', message('a@reject.test', 'from our network')));
    assert.equal(authResults(raw).length, 0);
    assert.equal(dns.queries.length, asked);
  } finally {
    await h.stop();
  }
});
