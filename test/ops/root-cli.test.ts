/**
 * A root `sendmail` while the server is stopped: the queue it creates must
 * belong to the data directory's owner (the user the server runs as), not to
 * root — a root-owned queue.db made the server fail with "readonly database".
 * And the server, run as that user, then delivers what sendmail queued.
 *
 * Needs root (to own files as another user): skipped with the reason
 * otherwise, failed instead under HALCYON_REQUIRE_INTEROP=1 (CI runs as root).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/halcyon.js';
import { requireRoot } from '../support/unavailable.js';

const NOBODY = 65534;

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? [p, ...walk(p)] : [p];
  });
}

test('root sendmail with the server stopped: every file it creates belongs to the data directory\'s owner', async (t) => {
  if (!requireRoot(t, 'cannot create files as another user')) return;
  const top = mkdtempSync(join(tmpdir(), 'halcyon-root-cli-'));
  chmodSync(top, 0o755); // mkdtemp's 0700 would keep the data directory's owner out
  try {
    const dataDir = join(top, 'data');
    const cfgFile = join(top, 'halcyon.toml');
    // The data directory as an install leaves it: owned by the server's user (here nobody), empty.
    mkdirSync(dataDir);
    chownSync(dataDir, NOBODY, NOBODY);
    writeFileSync(cfgFile, `hostname = "mx.halcyon.test"\ndata_dir = "${dataDir}"\n[http]\nenabled = false\n[smtp]\nlisten = ["127.0.0.1:0"]\n`);
    const r = await runCli(['sendmail', '-C', cfgFile, '-f', 'root@mx.halcyon.test', 'someone@example.test'], {
      input: 'Subject: from root\r\n\r\nqueued while the server is stopped\r\n',
    });
    assert.equal(r.code, 0, r.stderr);
    const files = walk(dataDir);
    assert.ok(files.some((f) => f.endsWith('queue.db')), `a queue was made: ${files.join(', ')}`);
    const rootOwned = files.filter((f) => statSync(f).uid !== NOBODY);
    assert.deepEqual(rootOwned, [], 'files not owned by the data directory\'s owner');

    // What the server (as that user) would do first: open the queue for writing and list it.
    const list = await runCli(['queue', 'list', '--direct', '-c', cfgFile]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /someone@example\.test/);
    assert.deepEqual(walk(dataDir).filter((f) => statSync(f).uid !== NOBODY), []);
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
});
