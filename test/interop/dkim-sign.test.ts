/**
 * DKIM signing, checked by verifiers nobody here wrote: a message Halcyon
 * signs (RSA-2048 and Ed25519 keys made by `halcyon dkim keygen`) verifies
 * with dkimpy and with OpenDKIM's library, each answering from the TXT record
 * keygen printed; one changed body byte, or an added From header (From is
 * oversigned), fails them. Mail from an outside client on the MX listener is
 * not signed. A message queued before a restart is delivered after it with
 * its one original signature.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dkimpyVerify, haveDkimpy, haveOpendkim, opendkimVerify, type Verdict } from '../support/dkim-peers.js';
import { freePort, haveTool, runCli, spawnHalcyon, startTestApp } from '../support/halcyon.js';
import { halcyonMaildir, message, submit, waitUntil } from '../support/postfix.js';
import { startRemote } from '../support/remote-smtp.js';

/** `halcyon dkim keygen`, as a postmaster runs it: the key file and the TXT record it prints. */
async function keygen(dir: string, domain: string, selector: string, algorithm: string): Promise<{ key: string; record: [string, string] }> {
  const key = join(dir, `${domain}.${selector}.pem`);
  const r = await runCli(['dkim', 'keygen', domain, selector, '--algorithm', algorithm, '--out', key]);
  assert.equal(r.code, 0, r.stderr);
  const m = /^(\S+)\. IN TXT \( (.*) \)$/m.exec(r.stdout);
  assert.ok(m, `keygen prints the TXT record: ${r.stdout}`);
  const value = [...m[2]!.matchAll(/"([^"]*)"/g)].map((s) => s[1]).join('');
  return { key, record: [m[1]!, value] };
}

const signatures = (raw: Buffer): string[] => raw.toString('latin1').match(/^DKIM-Signature:.*(\r\n[ \t].*)*/gim) ?? [];

/** The same message with one byte of its body changed. */
function tamperBody(raw: Buffer): Buffer {
  const out = Buffer.from(raw);
  const at = out.indexOf('\r\n\r\n') + 4;
  out[at] = out[at] === 0x58 ? 0x59 : 0x58;
  return out;
}

function assertVerdicts(what: string, verdicts: Record<string, Verdict>, pass: boolean): void {
  for (const [who, v] of Object.entries(verdicts)) assert.equal(v.pass, pass, `${what}: ${who} says ${v.detail}`);
}

test('Halcyon-signed mail verifies with dkimpy and OpenDKIM (rsa-sha256, ed25519-sha256); a changed byte or an added From fails', { timeout: 90_000 }, async (t) => {
  if (!haveTool(t, haveDkimpy(), 'python3-dkim (dkimpy)') || !haveTool(t, haveOpendkim(), 'opendkim-tools (libopendkim)')) return;
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-dkim-keys-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const rsa = await keygen(dir, 'rsa.test', 's2026', 'rsa-sha256');
  const ed = await keygen(dir, 'ed.test', 'e2026', 'ed25519-sha256');
  const records = Object.fromEntries([rsa.record, ed.record]);

  const remote = await startRemote();
  t.after(() => remote.close());
  const h = await startTestApp({
    dkim: [{ domain: 'rsa.test', selector: 's2026', key: rsa.key }, { domain: 'ed.test', selector: 'e2026', key: ed.key, algorithm: 'ed25519-sha256' }],
    routes: { 'dest.test': `127.0.0.1:${remote.port}` },
    delivery: { queue_scan_interval: '100ms' },
  }, { scheduler: true });
  t.after(() => h.stop());

  // A relay-network client (loopback) on the MX listener: ours to sign. The Ed25519 key signs a subdomain's mail.
  await submit(h.port, { from: 'a@rsa.test', to: ['r@dest.test'], content: message('a@rsa.test', ['r@dest.test'], 'signed with rsa') });
  await submit(h.port, { from: 'b@news.ed.test', to: ['r@dest.test'], content: message('b@news.ed.test', ['r@dest.test'], 'signed with ed25519') });
  // The admin API's injection (sendmail's path) is signed too.
  await h.app.admin.inject({ from: 'c@rsa.test', to: ['r@dest.test'], content: 'From: C <c@rsa.test>\nTo: r@dest.test\nSubject: injected\n\nhello\n' });
  await remote.waitFor(() => remote.transactions.length === 3, 20_000);

  for (const tx of remote.transactions) {
    const subject = /^Subject: (.*)$/m.exec(tx.data.toString('latin1'))?.[1] ?? '?';
    const sigs = signatures(tx.data);
    assert.equal(sigs.length, 1, `${subject}: one DKIM-Signature`);
    assert.match(sigs[0]!, /c=relaxed\/relaxed/);
    assert.match(sigs[0]!, subject.includes('ed25519') ? /a=ed25519-sha256[^]*d=ed\.test/ : /a=rsa-sha256[^]*d=rsa\.test/);
    assertVerdicts(subject, { dkimpy: dkimpyVerify(tx.data, records), opendkim: opendkimVerify(tx.data, records) }, true);
    assertVerdicts(`${subject}, one body byte changed`, { dkimpy: dkimpyVerify(tamperBody(tx.data), records), opendkim: opendkimVerify(tamperBody(tx.data), records) }, false);
    // From is oversigned: a second From added anywhere in the header breaks the signature.
    const forged = Buffer.from(tx.data.toString('latin1').replace(/^Subject:/m, 'From: <boss@rsa.test>\r\nSubject:'), 'latin1');
    assertVerdicts(`${subject}, a From added`, { dkimpy: dkimpyVerify(forged, records) }, false);
  }
});

test('mail from an outside client on the MX listener is not signed; injected mail is', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-dkim-keys-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const rsa = await keygen(dir, 'rsa.test', 's1', 'rsa-sha256');
  const h = await startTestApp({
    relay: { networks: [] },
    inbound: { verify: false }, // this test is about signing; verification is test/inbound/authentication's
    domains: [{ name: 'rsa.test', mailboxes: [{ user: 'box' }] }],
    dkim: [{ domain: 'rsa.test', selector: 's1', key: rsa.key }],
    delivery: { queue_scan_interval: '100ms' },
  }, { scheduler: true });
  t.after(() => h.stop());
  // Claims to be from our own domain, but comes from outside: judged (issue item 3), never signed.
  await submit(h.port, { from: 'x@rsa.test', to: ['box@rsa.test'], content: message('x@rsa.test', ['box@rsa.test'], 'from outside') });
  await h.app.admin.inject({ from: 'y@rsa.test', to: ['box@rsa.test'], content: 'From: y@rsa.test\nSubject: local\n\nhi\n' });
  await waitUntil(() => halcyonMaildir(h.dataDir, 'rsa.test', 'box').length === 2, 'both messages in the mailbox');
  const bySubject = new Map(halcyonMaildir(h.dataDir, 'rsa.test', 'box').map((m) => [/^Subject: (.*)$/m.exec(m.content.toString())?.[1], m.content]));
  assert.equal(signatures(bySubject.get('from outside')!).length, 0, 'outside mail unsigned');
  assert.equal(signatures(bySubject.get('local')!).length, 1, 'injected mail signed');
});

test('a message queued before a restart is delivered after it with its one original signature', { timeout: 90_000 }, async (t) => {
  if (!haveTool(t, haveDkimpy(), 'python3-dkim (dkimpy)') || !haveTool(t, haveOpendkim(), 'opendkim-tools (libopendkim)')) return;
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-dkim-keys-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const rsa = await keygen(dir, 'rsa.test', 's1', 'rsa-sha256');
  const records = Object.fromEntries([rsa.record]);
  const dkim = `[[dkim]]\ndomain = "rsa.test"\nselector = "s1"\nkey = ${JSON.stringify(rsa.key)}\n`;
  const timing = 'retry_initial = "1s"\ndestination_backoff = "1s"\nqueue_scan_interval = "100ms"\n';

  // First life: the destination does not answer, so the signed message stays queued.
  const closed = await freePort();
  const first = await spawnHalcyon(`${dkim}[routes]\n"dest.test" = "127.0.0.1:${closed}"\n[delivery]\n${timing}`);
  const dataDir = first.dataDir;
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  await submit(first.port, { from: 'a@rsa.test', to: ['r@dest.test'], content: message('a@rsa.test', ['r@dest.test'], 'across a restart') });
  await new Promise((r) => setTimeout(r, 1_500)); // let it try (and fail) at least once
  const restartedAt = Math.floor(Date.now() / 1000);
  assert.equal((await first.kill('SIGTERM')).code, 0);

  // Second life, same data_dir: now the destination answers.
  const remote = await startRemote();
  t.after(() => remote.close());
  const second = await spawnHalcyon(`${dkim}[routes]\n"dest.test" = "127.0.0.1:${remote.port}"\n[delivery]\n${timing}`, { dataDir });
  t.after(() => second.kill('SIGTERM'));
  await remote.waitFor(() => remote.transactions.length === 1, 30_000);
  const data = remote.transactions[0]!.data;
  const sigs = signatures(data);
  assert.equal(sigs.length, 1, 'exactly one signature: none added by the retry or the restart');
  const signedAt = Number(/t=(\d+)/.exec(sigs[0]!)?.[1]);
  assert.ok(signedAt <= restartedAt, `signed before the restart (t=${signedAt}, restart at ${restartedAt})`);
  assertVerdicts('after a restart', { dkimpy: dkimpyVerify(data, records), opendkim: opendkimVerify(data, records) }, true);
});
