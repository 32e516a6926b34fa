/**
 * I2 across processes: three processes claim from one queue file at once;
 * every recipient is claimed by exactly one of them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSqliteQueue } from '../../src/queue/sqlite/store.js';

const CHILD = fileURLToPath(new URL('./claim-child.js', import.meta.url));

function claimer(dataDir: string, owner: string): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dataDir, owner], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      if (code !== 0) reject(new Error(`claimer ${owner} exited ${code}: ${err}`));
      else resolve(out.split('\n').filter((l) => l !== '').map(Number));
    });
  });
}

test('three processes claiming at once never claim the same recipient (I2)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-claim-'));
  try {
    const store = await openSqliteQueue({ dataDir: dir });
    await Promise.all(Array.from({ length: 300 }, (_, i) => store.messages.enqueue({
      sender: 's@s.test', params: { smtputf8: false }, receivedAt: Date.now(),
      trace: { clientIp: '127.0.0.1', clientHelo: 'h', protocol: 'ESMTP' }, body: Buffer.from('x\r\n'),
      recipients: [{ address: `a${i}@d.test`, destination: 'd.test' }, { address: `b${i}@e.test`, destination: 'e.test' }],
    })));
    await store.close();

    const results = await Promise.all(['p1', 'p2', 'p3'].map((owner) => claimer(dir, owner)));
    const all = results.flat();
    assert.equal(new Set(all).size, all.length, 'a recipient was claimed twice');
    assert.equal(all.length, 600);

    const after = await openSqliteQueue({ dataDir: dir });
    assert.equal((await after.recipients.counts()).byState.inflight, 600);
    await after.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
