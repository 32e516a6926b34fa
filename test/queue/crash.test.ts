/**
 * Crash durability of the SQLite queue: a child process enqueues messages and
 * prints each id as its enqueue resolves; it is SIGKILLed mid-stream. Every
 * printed (acknowledged) id must be in the reopened queue with its body and
 * recipients, and no stored message may lack either. SIGKILL does not lose
 * the page cache, so this proves the commit protocol, not the disk's honesty.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { openSqliteQueue } from '../../src/queue/sqlite/store.js';
import { childBody } from './enqueue-child.js';

const CHILD = fileURLToPath(new URL('./enqueue-child.js', import.meta.url));
const KILL_AFTER = 300;

function runUntilKilled(dataDir: string): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked = new Map<string, number>();
    let buffered = '';
    let stderr = '';
    let killed = false;
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const [id, seq] = line.split(' ');
        acked.set(id!, Number(seq));
      }
      if (!killed && acked.size >= KILL_AFTER) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL' || !killed) reject(new Error(`child ended without being killed (${signal}): ${stderr}`));
      else resolve(acked);
    });
  });
}

test('every acknowledged enqueue survives SIGKILL with body and recipients', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-crash-'));
  try {
    const acked = await runUntilKilled(dir);
    assert.ok(acked.size >= KILL_AFTER);

    const store = await openSqliteQueue({ dataDir: dir });
    try {
      for (const [id, seq] of acked) {
        const msg = await store.messages.getMessage(id);
        assert.ok(msg, `acknowledged ${id} (#${seq}) is missing`);
        assert.deepEqual(await store.messages.getBody(id), childBody(seq));
        assert.deepEqual((await store.recipients.getRecipients(id)).map((r) => r.address), [`a${seq}@one.test`, `b${seq}@two.test`]);
      }
      // Messages committed but not yet printed when killed may exist too; each must be whole.
      const all = await store.recipients.listMessages({});
      assert.ok(all.length >= acked.size);
      for (const { message, recipients } of all) {
        assert.equal(recipients.length, 2, `${message.id} lacks recipients`);
        assert.equal((await store.messages.getBody(message.id)).length, message.size);
      }
    } finally {
      await store.close();
    }

    const db = new Database(join(dir, 'queue', 'queue.db'), { readonly: true });
    try {
      const orphans = db.prepare(`SELECT
        (SELECT COUNT(*) FROM bodies WHERE message_id NOT IN (SELECT id FROM messages)) +
        (SELECT COUNT(*) FROM recipients WHERE message_id NOT IN (SELECT id FROM messages)) +
        (SELECT COUNT(*) FROM messages WHERE id NOT IN (SELECT message_id FROM bodies)) AS n`).pluck().get();
      assert.equal(orphans, 0);
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
