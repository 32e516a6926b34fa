/**
 * End to end: the aliases file ([aliases] file, /etc/aliases format) as an
 * SMTP client and a postmaster see it. A real `halcyon serve` (the built
 * CLI) with a local domain, mailboxes alice and bob, and a route for
 * remote.test to a recording SMTP peer:
 *
 * - mail to an alias reaches the expanded addresses: both Maildirs and the
 *   remote peer (`team`), and the addresses of an `:include:` file (`list`);
 * - a pipe target is refused (RCPT 550 for an alias with nothing else), and
 *   the log says why with file and line; an alias loop is refused, not run;
 * - an edit of the file (or of an included file) is in force without
 *   anything but the change (the check interval), and with a long interval
 *   `halcyon newaliases` (also through a link of that name) puts it in force
 *   at once on the running server (also as `sendmail -bi`), and checks the
 *   file when none runs;
 * - `halcyon config check` prints the refused entries as warnings.
 * Nothing here measures time: waits are bounded polls.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, runCli, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { startRemote, rcptsFor, type Remote } from '../support/remote-smtp.js';
import { rcptReply } from '../support/smtp-client.js';
import { halcyonMaildir, message, submit, waitUntil } from '../support/postfix.js';

const ALIASES = [
  '# aliases for local.test',
  'postmaster: alice',
  'team:  alice, bob,',
  '       carol@remote.test',
  'list:  :include:list.txt',
  'cmd:   "|/usr/bin/procmail"',
  'loop1: loop2',
  'loop2: loop1',
  '',
].join('\n');

describe('the aliases file over SMTP', { timeout: 120_000 }, () => {
  let dir: string;
  let remote: Remote;
  const servers: SpawnedHalcyon[] = [];
  const file = () => join(dir, 'aliases');

  const toml = (interval: string) => [
    'log_level = "info"',
    '[aliases]',
    `file = "${file()}"`,
    `check_interval = "${interval}"`,
    '[delivery]',
    'queue_scan_interval = "200ms"',
    '[routes]',
    `"remote.test" = "127.0.0.1:${remote.port}"`,
    '"client.test" = "127.0.0.1:9"',
    '[[domains]]',
    'name = "local.test"',
    'mailboxes = [{ user = "alice" }, { user = "bob" }]',
  ].join('\n');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'halcyon-aliases-'));
    writeFileSync(file(), ALIASES);
    writeFileSync(join(dir, 'list.txt'), '# the list\nbob\n');
    remote = await startRemote();
  });
  after(async () => {
    for (const s of servers) await s.kill('SIGTERM');
    await remote?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('mail to an alias is delivered to its expansion; pipes and loops are refused; an edit is in force by itself', async () => {
    const h = await spawnHalcyon(toml('200ms'), { captureStdout: true });
    servers.push(h);
    const box = (user: string) => halcyonMaildir(h.dataDir, 'local.test', user);

    await submit(h.port, { from: 'sender@client.test', to: ['team@local.test'], content: message('sender@client.test', ['team@local.test'], 'to the team', 'hello team') });
    await waitUntil(() => box('alice').length === 1 && box('bob').length === 1 && rcptsFor(remote, 'carol@remote.test') === 1, 'team delivered to alice, bob and carol@remote.test');
    assert.match(box('alice')[0]!.content.toString(), /Subject: to the team/);
    assert.match(box('bob')[0]!.content.toString(), /^Delivered-To: bob@local\.test/m);
    await remote.waitFor(() => remote.transactions.some((t) => t.rcpts.includes('carol@remote.test')));

    // :include: — bob is on the list file.
    await submit(h.port, { from: 'sender@client.test', to: ['list@local.test'], content: message('sender@client.test', ['list@local.test'], 'to the list', 'hello list') });
    await waitUntil(() => box('bob').length === 2, 'list delivered to bob');
    assert.equal(box('alice').length, 1);

    // No pipe delivery: the alias has no other target, so its mail is refused at RCPT; a loop likewise.
    const cmd = await rcptReply(h.port, 'cmd@local.test');
    assert.deepEqual([cmd.code, cmd.enhanced], [550, '5.1.1']);
    assert.equal((await rcptReply(h.port, 'loop1@local.test')).code, 550);
    assert.match(h.stdout(), /"event":"aliases_refused"[^\n]*"line":6[^\n]*delivery to a command is not supported/);
    assert.match(h.stdout(), /"event":"aliases_loaded"[^\n]*"aliases":6/);

    // An edit (written whole and renamed over, as editors do) is seen by the check, nothing else done.
    assert.equal((await rcptReply(h.port, 'new@local.test')).code, 550);
    writeFileSync(`${file()}.tmp`, `${ALIASES}new: bob\n`);
    renameSync(`${file()}.tmp`, file());
    await waitUntil(async () => (await rcptReply(h.port, 'new@local.test')).code === 250, 'new@ accepted after the file changed');
    // So is an edit of an included file.
    writeFileSync(join(dir, 'list.txt'), 'alice\n');
    await waitUntil(() => /"event":"aliases_loaded"[^\n]*"why":"changed"[^\n]*\n[\s\S]*"event":"aliases_loaded"[^\n]*"why":"changed"/.test(h.stdout()), 'the include change read');
    await submit(h.port, { from: 'sender@client.test', to: ['list@local.test'], content: message('sender@client.test', ['list@local.test'], 'list again', 'x') });
    await waitUntil(() => box('alice').length === 2, 'list now delivered to alice');
    assert.equal(box('bob').length, 2);
    await h.kill('SIGTERM');
  });

  test('halcyon newaliases: the running server takes the file at once; with none running the file is checked', async () => {
    writeFileSync(file(), ALIASES);
    // A check interval far beyond the test: only newaliases can bring the edit in.
    const h = await spawnHalcyon(toml('1h'), { http: true, captureStdout: true });
    servers.push(h);
    writeFileSync(file(), `${ALIASES}later: alice\n`);
    assert.equal((await rcptReply(h.port, 'later@local.test')).code, 550, 'not read yet');

    const r = await runCli(['newaliases', '--config', h.configFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${file()}: 7 aliases \\(in force on the running server`));
    assert.match(r.stderr, /newaliases: warning: .*aliases:6: "\|\/usr\/bin\/procmail": delivery to a command is not supported/);
    assert.equal((await rcptReply(h.port, 'later@local.test')).code, 250);
    assert.match(h.stdout(), /"event":"admin","action":"newaliases"/);

    // Through a link named newaliases, as Postfix installs it.
    const link = join(dir, 'newaliases');
    symlinkSync(CLI, link);
    writeFileSync(file(), `${ALIASES}later: alice\nlater2: bob\n`);
    const viaLink = await runCli(['--config', h.configFile], { script: link });
    assert.equal(viaLink.code, 0, viaLink.stderr);
    assert.match(viaLink.stdout, /: 8 aliases \(in force/);
    assert.equal((await rcptReply(h.port, 'later2@local.test')).code, 250);
    // And as `sendmail -bi` (Sendmail's spelling, which Postfix keeps).
    const bi = await runCli(['sendmail', '-bi', '-C', h.configFile]);
    assert.equal(bi.code, 0, bi.stderr);
    assert.match(bi.stdout, /: 8 aliases \(in force/);

    // A file that cannot be read: an error, and the aliases in force stay.
    rmSync(file());
    const gone = await runCli(['newaliases', '--config', h.configFile]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /cannot be read \(ENOENT\); the aliases in force stay/);
    assert.equal((await rcptReply(h.port, 'later2@local.test')).code, 250);
    writeFileSync(file(), ALIASES);

    await h.kill('SIGTERM');
    const checked = await runCli(['newaliases', '--config', h.configFile]);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, /: 6 aliases \(checked; no server answering/);
    const check = await runCli(['config', 'check', h.configFile]);
    assert.equal(check.code, 0, check.stdout);
    assert.match(check.stdout, /warning: aliases: .*aliases:6: "\|\/usr\/bin\/procmail": delivery to a command is not supported: target refused\n[\s\S]*: ok\n$/);
  });
});
