/**
 * test/ops/install-script — scripts/install.sh as a postmaster runs it and
 * checks it: run as root with `--root` (DESTDIR) under a temp dir and a
 * user name made for this run (created for real, since a file's owner is a
 * number; removed at the end), it creates a system user that cannot log in,
 * /etc/halcyon root:USER 0750 with the starter config root:USER 0640 (which
 * `halcyon config check` accepts), /var/lib/halcyon USER:USER 0750, the
 * systemd unit 0644 with StateDirectory= and this package's bin, the bin
 * link (which runs), the man page and completions, and the MTA links on
 * request. The service's user can read its config, not change it, and write
 * its state directory. A second run changes nothing already right, repairs
 * a wrong mode and never overwrites the config. Skipped when not root (CI
 * runs as root).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI, runCli } from '../support/halcyon.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const SCRIPT = join(REPO, 'scripts/install.sh');
const isRoot = process.getuid?.() === 0;

function getent(db: string, key: string): string[] | undefined {
  const r = spawnSync('getent', [db, key], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split(':') : undefined;
}

test('install.sh: user, directories, config, unit, links, man page and completions with the owners and modes a postmaster checks', { skip: isRoot ? false : 'needs root (CI runs as root)' }, async () => {
  const user = `haltest${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const root = mkdtempSync(join(tmpdir(), 'halcyon-install-'));
  chmodSync(root, 0o755); // so the service user can reach the files below, as it can under /
  const at = (p: string) => join(root, p);
  const run = () => execFileSync('sh', [SCRIPT, '--root', root, '--user', user, '--mta-links'], { encoding: 'utf8' });
  try {
    const out = run();
    assert.match(out, new RegExp(`user ${user} created`));

    // The account: a system user (uid below 1000) that cannot log in, home = the state directory.
    const pw = getent('passwd', user);
    const gr = getent('group', user);
    assert.ok(pw && gr, 'user and group exist');
    const [, , uid, gid, , home, shell] = pw;
    assert.ok(Number(uid) < 1000, `system uid, got ${uid}`);
    assert.equal(gid, gr[2]);
    assert.equal(home, '/var/lib/halcyon');
    assert.match(shell!, /nologin$/);

    const owner = (p: string) => {
      const s = lstatSync(at(p));
      return { uid: s.uid, gid: s.gid, mode: (s.mode & 0o7777).toString(8) };
    };
    assert.deepEqual(owner('etc/halcyon'), { uid: 0, gid: Number(gid), mode: '750' });
    assert.deepEqual(owner('etc/halcyon/halcyon.toml'), { uid: 0, gid: Number(gid), mode: '640' });
    assert.deepEqual(owner('var/lib/halcyon'), { uid: Number(uid), gid: Number(gid), mode: '750' });
    assert.deepEqual(owner('etc/systemd/system/halcyon.service'), { uid: 0, gid: 0, mode: '644' });
    for (const f of ['usr/local/share/man/man8/halcyon.8', 'usr/local/share/bash-completion/completions/halcyon', 'usr/local/share/zsh/site-functions/_halcyon']) {
      assert.deepEqual(owner(f), { uid: 0, gid: 0, mode: '644' }, f);
    }
    assert.equal(readFileSync(at('usr/local/share/man/man8/halcyon.8'), 'utf8'), readFileSync(join(REPO, 'man/halcyon.8'), 'utf8'));

    const unit = readFileSync(at('etc/systemd/system/halcyon.service'), 'utf8');
    for (const line of [`User=${user}`, `Group=${user}`, 'StateDirectory=halcyon', 'StateDirectoryMode=0750', 'WorkingDirectory=/var/lib/halcyon',
      `ExecStart=${CLI} serve --config /etc/halcyon/halcyon.toml --drain-timeout 30s`]) {
      assert.ok(unit.split('\n').includes(line), `unit has ${line}`);
    }
    const config = readFileSync(at('etc/halcyon/halcyon.toml'), 'utf8');
    assert.match(config, /^data_dir = "\/var\/lib\/halcyon"$/m);
    const check = await runCli(['config', 'check', at('etc/halcyon/halcyon.toml')]);
    assert.equal(check.code, 0, check.stdout + check.stderr);

    // The bin link (and the MTA links) run Halcyon.
    for (const l of ['usr/local/bin/halcyon', 'usr/sbin/sendmail', 'usr/bin/mailq', 'usr/bin/newaliases']) assert.equal(readlinkSync(at(l)), CLI, l);
    assert.match(execFileSync(at('usr/local/bin/halcyon'), ['--version'], { encoding: 'utf8' }), /^\d+\.\d+\.\d+/);

    // What the service's user may do: read its config, not change it; write its state directory.
    const asUser = spawnSync('runuser', ['-u', user, '--', 'sh', '-c',
      `cat '${at('etc/halcyon/halcyon.toml')}' >/dev/null && ! (echo x >> '${at('etc/halcyon/halcyon.toml')}') 2>/dev/null && touch '${at('var/lib/halcyon/probe')}'`], { encoding: 'utf8' });
    assert.equal(asUser.status, 0, asUser.stderr);
    assert.equal(statSync(at('var/lib/halcyon/probe')).uid, Number(uid));

    // Again: the config is kept, a wrong mode is put right, nothing fails.
    appendFileSync(at('etc/halcyon/halcyon.toml'), '# edited by the postmaster\n');
    chmodSync(at('var/lib/halcyon'), 0o777);
    const again = run();
    assert.match(again, /halcyon\.toml exists: left as it is/);
    assert.doesNotMatch(again, /created/);
    assert.match(readFileSync(at('etc/halcyon/halcyon.toml'), 'utf8'), /# edited by the postmaster\n$/);
    assert.deepEqual(owner('var/lib/halcyon'), { uid: Number(uid), gid: Number(gid), mode: '750' });

    // Refusals: a state directory systemd cannot manage, an unknown option.
    const bad = spawnSync('sh', [SCRIPT, '--root', root, '--user', user, '--state-dir', '/srv/halcyon'], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--state-dir must be under \/var\/lib/);
    assert.equal(spawnSync('sh', [SCRIPT, '--bogus'], { encoding: 'utf8' }).status, 2);
  } finally {
    spawnSync('userdel', [user]);
    if (getent('group', user)) spawnSync('groupdel', [user]);
    rmSync(root, { recursive: true, force: true });
  }
  assert.equal(getent('passwd', user), undefined, 'the test user is removed');
});
