/**
 * test/ops/sendmail — `halcyon sendmail` end to end: each flag, submitted to
 * a spawned server and checked in what the remote receives; the `sendmail`
 * symlink name; -bs over the SMTP listener; queueing into a stopped data_dir.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, TEST_HOSTNAME, queueList, runCli, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { startRemote, type Remote } from '../support/remote-smtp.js';

describe('halcyon sendmail', () => {
  let remote: Remote;
  let h: SpawnedHalcyon;
  const sendmail = (args: string[], input: string) => runCli(['sendmail', '-C', h.configFile, ...args], { input });
  const received = async (rcpt: string) => {
    await remote.waitFor(() => remote.transactions.some((t) => t.rcpts.includes(rcpt)), 15_000);
    return remote.transactions.find((t) => t.rcpts.includes(rcpt))!;
  };

  before(async () => {
    remote = await startRemote();
    h = await spawnHalcyon(`[routes]\n"sink.test" = "127.0.0.1:${remote.port}"\n`, { http: true });
  });
  after(async () => {
    await h.kill('SIGTERM');
    await remote.close();
  });

  test('-t: recipients from To, Cc and Bcc; Bcc removed; -f sets the envelope sender', async () => {
    const r = await sendmail(['-t', '-f', 'cron@sink.test'], 'To: t1@sink.test\nCc: "C" <c1@sink.test>\nBcc: b1@sink.test\nSubject: -t\n\nhello\n');
    assert.equal(r.code, 0, r.stderr);
    const t = await received('t1@sink.test');
    assert.deepEqual([...t.rcpts].sort(), ['b1@sink.test', 'c1@sink.test', 't1@sink.test']);
    assert.equal(t.mailFrom, 'cron@sink.test');
    assert.doesNotMatch(t.data.toString(), /^Bcc:/im);
    assert.match(t.data.toString(), /^Subject: -t\r$/m);
  });

  test('-F names the From header it adds; Date and Message-ID are added', async () => {
    assert.equal((await sendmail(['-F', 'Backup Job', '-f', 'backup@sink.test', 'f1@sink.test'], 'Subject: f\n\nx\n')).code, 0);
    const data = (await received('f1@sink.test')).data.toString();
    assert.match(data, /^From: "Backup Job" <backup@sink\.test>\r$/m);
    assert.match(data, /^Date: /m);
    assert.match(data, /^Message-ID: </m);
  });

  test('-t keeps 8-bit input byte for byte (Latin-1 é stays 0xE9), and its Message-ID names config hostname', async () => {
    const input = Buffer.concat([Buffer.from('To: l1@sink.test\nSubject: latin1\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\ncaf'),
      Buffer.from([0xe9]), Buffer.from(' cr'), Buffer.from([0xe8, 0x6d, 0x65]), Buffer.from('\n')]);
    const r = await runCli(['sendmail', '-C', h.configFile, '-t', '-f', 'latin@sink.test'], { input });
    assert.equal(r.code, 0, r.stderr);
    const data = (await received('l1@sink.test')).data;
    const body = data.subarray(data.indexOf('\r\n\r\n') + 4);
    assert.deepEqual([...body], [...Buffer.from('caf'), 0xe9, ...Buffer.from(' cr'), 0xe8, 0x6d, 0x65, 0x0d, 0x0a]);
    assert.equal(data.indexOf(Buffer.from('\uFFFD', 'utf8')), -1, 'no replacement characters');
    assert.match(data.toString('latin1'), new RegExp(`^Message-ID: <[^@>]+@${TEST_HOSTNAME.replace(/\./g, '\\.')}>\r$`, 'm'));
  });

  test('the Message-ID names the running server\'s hostname, even when sendmail runs with another config', async () => {
    // A config that only says where the server is (as the embedded defaults do for 127.0.0.1:8025), with another hostname.
    const other = join(h.dataDir, 'client.toml');
    writeFileSync(other, `hostname = "client.invalid"\n[http]\nlisten = "127.0.0.1:${h.httpPort}"\n`);
    const r = await runCli(['sendmail', '-C', other, '-f', 'cron@sink.test', 'm1@sink.test'], { input: 'Subject: mid\n\nx\n' });
    assert.equal(r.code, 0, r.stderr);
    const data = (await received('m1@sink.test')).data.toString('latin1');
    assert.match(data, new RegExp(`^Message-ID: <[^@>]+@${TEST_HOSTNAME.replace(/\./g, '\\.')}>\r$`, 'm'));
    assert.doesNotMatch(data, /client\.invalid/);
  });

  test('a lone dot ends the message without -i, not with -i or -oi', async () => {
    await sendmail(['d1@sink.test'], 'Subject: d1\n\nbefore\n.\nafter\n');
    await sendmail(['-i', 'd2@sink.test'], 'Subject: d2\n\nbefore\n.\nafter\n');
    await sendmail(['-oi', 'd3@sink.test'], 'Subject: d3\n\nbefore\n.\nafter\n');
    const d1 = (await received('d1@sink.test')).data.toString();
    assert.match(d1, /before\r\n$/);
    assert.doesNotMatch(d1, /after/);
    for (const r of ['d2@sink.test', 'd3@sink.test']) assert.match((await received(r)).data.toString(), /before\r\n\.\r\nafter\r\n$/);
  });

  test('unknown -o options and -v are ignored, as real sendmail does', async () => {
    const r = await sendmail(['-oem', '-odb', '-oQ/var/spool', '-v', 'o1@sink.test'], 'Subject: o\n\nx\n');
    assert.equal(r.code, 0, r.stderr);
    await received('o1@sink.test');
  });

  test('invoked through a symlink named sendmail', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'halcyon-sendmail-'));
    try {
      const link = join(dir, 'sendmail');
      symlinkSync(CLI, link);
      const r = await runCli(['-C', h.configFile, '-t'], { input: 'To: s1@sink.test\nSubject: link\n\nx\n', script: link });
      assert.equal(r.code, 0, r.stderr);
      await received('s1@sink.test');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('no recipients: EX_USAGE (64); a bad address: EX_NOUSER (67)', async () => {
    assert.equal((await sendmail([], 'Subject: none\n\nx\n')).code, 64);
    const bad = await sendmail(['not an address'], 'Subject: bad\n\nx\n');
    assert.equal(bad.code, 67, bad.stderr);
  });

  test('-bs speaks SMTP on stdin/stdout through the SMTP listener', async () => {
    const child = spawn(process.execPath, [CLI, 'sendmail', '-C', h.configFile, '-bs'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    const exited = new Promise<number | null>((r) => child.once('close', r));
    const expect = async (code: string) => {
      for (let i = 0; i < 200 && !new RegExp(`^${code} `, 'm').test(out); i++) await new Promise((r) => setTimeout(r, 25));
      assert.match(out, new RegExp(`^${code} `, 'm'));
      out = '';
    };
    await expect('220');
    for (const [line, code] of [['EHLO client.test', '250'], ['MAIL FROM:<bs@sink.test>', '250'], ['RCPT TO:<bs1@sink.test>', '250'], ['DATA', '354'],
      ['Subject: bs\r\n\r\nvia -bs\r\n.', '250'], ['QUIT', '221']] as const) {
      child.stdin.write(`${line}\r\n`);
      await expect(code);
    }
    child.stdin.end();
    assert.equal(await exited, 0);
    assert.match((await received('bs1@sink.test')).data.toString(), /via -bs/);
  });

  test('with the server stopped, the message is queued in data_dir for its next start', async () => {
    await h.kill('SIGTERM');
    const r = await sendmail(['-f', 'late@sink.test', 'q1@sink.test'], 'Subject: later\n\nx\n');
    assert.equal(r.code, 0, r.stderr);
    const list = await queueList(h.configFile);
    const e = list.find((x) => x.recipients.some((rc) => rc.address === 'q1@sink.test'));
    assert.ok(e);
    assert.equal(e.message.sender, 'late@sink.test');
    assert.equal(e.message.trace.protocol, 'LOCAL');
    h = await spawnHalcyon(`[routes]\n"sink.test" = "127.0.0.1:${remote.port}"\n`, { dataDir: h.dataDir });
    await received('q1@sink.test');
  });
});
