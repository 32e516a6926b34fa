/**
 * A full disk (issue 10, item 5), on a small tmpfs the test mounts (root
 * only: skipped with a message otherwise, unless HALCYON_REQUIRE_INTEROP=1).
 * Halcyon is killed with -9 while recipients are in flight and the disk is
 * full; it must start again, deliver what it holds, answer new mail with
 * 452 4.3.1, and accept mail again once space returns.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { startRemote } from '../support/remote-smtp.js';
import { RawSmtpClient } from '../support/smtp-client.js';
import { requireRoot } from '../support/unavailable.js';

const MESSAGES = 5;

/** Fills the filesystem of `file` until ENOSPC; returns the bytes written. */
function fillDisk(file: string): number {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x78);
  let n = 0;
  try {
    for (;;) n += writeSync(fd, chunk);
  } catch { /* ENOSPC: full */ } finally {
    closeSync(fd);
  }
  return n;
}

async function mailReply(port: number): Promise<string> {
  const c = await RawSmtpClient.connect(port);
  try {
    await c.read();
    await c.cmd('EHLO client.test');
    const r = await c.cmd('MAIL FROM:<s@src.test>');
    return `${r.code} ${r.enhanced ?? ''}`.trim();
  } finally {
    c.close();
  }
}

test('killed -9 on a full disk: starts, delivers what it holds, 452 4.3.1 for new mail until space returns', async (t) => {
  if (!requireRoot(t, 'cannot mount the tmpfs this test needs (run as root, as CI does)')) return;
  const mnt = mkdtempSync(join(tmpdir(), 'halcyon-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=12m', 'tmpfs', mnt]);
  const remote = await startRemote({ hang: true });
  let h: SpawnedHalcyon | undefined;
  try {
    const dataDir = join(mnt, 'data');
    mkdirSync(dataDir);
    const toml = `[smtp]\nmax_message_size = "64k"\n[routes]\n"dest.test" = "127.0.0.1:${remote.port}"\n`;
    h = await spawnHalcyon(toml, { dataDir });
    for (let i = 0; i < MESSAGES; i++) {
      const c = await RawSmtpClient.connect(h.port);
      await c.read();
      const r = await c.send({ from: 's@src.test', to: [`r${i}@dest.test`], content: `Subject: ${i}\r\n\r\n${'body line\r\n'.repeat(200)}` });
      assert.equal(r.code, 250);
      c.close();
    }
    await remote.waitFor(() => remote.connections.length >= 1, 15_000); // recipients are in flight: the remote never greets
    assert.ok(fillDisk(join(mnt, 'filler')) > 0);
    await h.kill('SIGKILL');

    remote.setOptions({ hang: false });
    h = await spawnHalcyon(toml, { dataDir, port: h.port });
    await remote.waitFor(() => new Set(remote.transactions.flatMap((x) => x.rcpts)).size === MESSAGES, 30_000);
    assert.equal(await mailReply(h.port), '452 4.3.1', 'new mail waits while the disk is full');

    rmSync(join(mnt, 'filler'));
    let code = '';
    for (let i = 0; i < 100 && code !== '250 2.1.0'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      code = await mailReply(h.port);
    }
    assert.equal(code, '250 2.1.0', 'new mail is accepted once space returns');
  } finally {
    await h?.kill('SIGTERM');
    await remote.close();
    execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
});
