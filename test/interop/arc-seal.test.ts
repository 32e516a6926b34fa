/**
 * ARC sealing (RFC 8617) of forwarded mail, checked by a verifier nobody
 * here wrote: dkimpy's `dkim.arc_verify`. A sender's message, DKIM-signed by
 * dkimpy and sent from an address its SPF allows, reaches Halcyon's MX
 * listener for `list@fwd.test`, an alias that forwards to a remote address
 * (and keeps a local copy). The remote SMTP server receives it; dkimpy
 * finds the ARC chain valid (cv=pass) with the `[[arc]]` key's public
 * record, and the ARC-Authentication-Results carry the checks made here.
 * A changed body byte makes dkimpy fail it (the test can fail); a message
 * that is not forwarded, or comes from a client that is ours, is not sealed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dkimTxtRecord } from '../../src/intake/dkim.js';
import { dkimpyArcVerify, dkimpySign, dkimpyVerify, haveDkimpy } from '../support/dkim-peers.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { parse as parseToml } from 'smol-toml';
import { runCli, startTestApp, type TestApp } from '../support/halcyon.js';
import { submit, message, waitUntil } from '../support/postfix.js';
import { startRemote, type Remote } from '../support/remote-smtp.js';
import { available } from '../support/unavailable.js';

const sender = generateKeyPairSync('rsa', { modulusLength: 2048 });
const SENDER_PEM = sender.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const RECORDS: Record<string, string> = { 'sel._domainkey.sender.test': dkimTxtRecord(sender.publicKey) };

let dir: string;
let dns: TestDnsServer;
let remote: Remote;
let h: TestApp;
let dkimpy = false;

before(async () => {
  // Asked first, before the app and its peers load the machine (the check runs Python).
  dkimpy = haveDkimpy();
  dir = mkdtempSync(join(tmpdir(), 'halcyon-arc-'));
  // The sealing key as a postmaster makes it: `halcyon dkim keygen --arc` prints the TXT record and the [[arc]] entry.
  const made = await runCli(['dkim', 'keygen', 'fwd.test', 'arc2026', '--arc', '--out', join(dir, 'arc.pem')]);
  assert.equal(made.code, 0, made.stderr);
  const txt = /^(\S+)\. IN TXT \( (.*) \)$/m.exec(made.stdout);
  assert.ok(txt, made.stdout);
  RECORDS[txt[1]!] = [...txt[2]!.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('');
  const entry = parseToml(made.stdout.slice(made.stdout.indexOf('[[arc]]'))) as { arc: { domain: string; selector: string; key: string }[] };
  dns = await startDnsServer({
    'sender.test': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
    '_dmarc.sender.test': { TXT: ['v=DMARC1; p=reject'] },
    ...Object.fromEntries(Object.entries(RECORDS).map(([k, v]) => [k, { TXT: [v] }])),
  });
  remote = await startRemote({});
  h = await startTestApp({
    relay: { networks: [] },
    domains: [{ name: 'fwd.test', mailboxes: [{ user: 'box' }], aliases: { list: ['r@remote.test', 'box'], solo: ['box'] } }],
    routes: { 'remote.test': `127.0.0.1:${remote.port}` },
    arc: entry.arc,
    dns: { servers: [dns.address], timeout: '2s' },
  });
});

after(async () => {
  await h?.stop();
  await remote?.close();
  await dns?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const signed = (to: string, subject: string): string =>
  dkimpySign(Buffer.from(message('a@sender.test', [to], subject)), 'sel', 'sender.test', SENDER_PEM).toString('latin1');

const headerNames = (raw: Buffer): string[] => {
  const head = raw.toString('latin1').split('\r\n\r\n')[0] ?? '';
  return head.split('\r\n').filter((l) => /^\S/.test(l)).map((l) => l.slice(0, l.indexOf(':')));
};

test('forwarded by an alias: sealed, and dkimpy validates the ARC chain', async (t) => {
  if (!available(t, dkimpy ? undefined : 'dkimpy (python3-dkim) is not installed')) return;
  const id = await submit(h.port, { from: 'a@sender.test', to: ['list@fwd.test'], content: signed('list@fwd.test', 'forwarded') });
  await waitUntil(async () => {
    await h.app.qmgr.runOnce();
    return remote.transactions.some((tx) => tx.rcpts.includes('<r@remote.test>') || tx.rcpts.includes('r@remote.test'));
  }, 'the forwarded copy at the remote');
  const tx = remote.transactions.find((x) => x.rcpts.some((r) => r.includes('r@remote.test')))!;
  const names = headerNames(tx.data);
  assert.deepEqual(names.slice(0, 3), ['ARC-Seal', 'ARC-Message-Signature', 'ARC-Authentication-Results'], `the ARC set on top: ${names.join(', ')}`);
  const text = tx.data.toString('latin1');
  assert.match(text, /ARC-Seal: i=1; a=rsa-sha256;[^]*?cv=none; d=fwd\.test; s=arc2026/);
  const aar = /ARC-Authentication-Results: i=1; ([^]*?)\r\n(?!\s)/.exec(text)?.[1]?.replace(/\r\n\s+/g, ' ') ?? '';
  assert.match(aar, /dkim=pass header\.i=@sender\.test/);
  assert.match(aar, /spf=pass/);
  assert.match(aar, /dmarc=pass/);

  const arc = dkimpyArcVerify(tx.data, RECORDS);
  assert.ok(arc.pass, `dkimpy arc_verify: ${arc.detail}`);
  assert.ok(dkimpyVerify(tx.data, RECORDS).pass, 'the sender\'s own DKIM signature still verifies');
  assert.ok(id);

  // The test can fail: one changed body byte breaks the ARC-Message-Signature.
  const tampered = Buffer.from(text.replace('Hello from the interop tests.', 'Hello from the interop tests!'), 'latin1');
  const broken = dkimpyArcVerify(tampered, RECORDS);
  assert.equal(broken.pass, false, broken.detail);
});

test('not forwarded (the alias stays local): not sealed', async () => {
  const id = await submit(h.port, { from: 'a@sender.test', to: ['solo@fwd.test'], content: signed('solo@fwd.test', 'local only') });
  const body = await h.app.store.messages.getBody(id);
  assert.ok(!headerNames(body).includes('ARC-Seal'), headerNames(body).join(', '));
  assert.ok(headerNames(body).includes('Authentication-Results'), 'it was verified');
});
