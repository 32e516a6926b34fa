/**
 * test/ops/log-time — `[log] time`: a JSON log line's `time` is ISO 8601 UTC
 * by default and epoch milliseconds with `time = "epoch"`, read from the
 * lines a spawned server writes (its "listening" lines at start).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnHalcyon } from '../support/halcyon.js';

async function firstLine(toml: string): Promise<Record<string, unknown>> {
  const h = await spawnHalcyon(`log_level = "info"\n${toml}`, { captureStdout: true, readyTimeoutMs: 60_000 });
  try {
    const line = h.stdout().split('\n').find((l) => l.includes('"listening"'));
    assert.ok(line, `a listening line in: ${h.stdout()}`);
    return JSON.parse(line) as Record<string, unknown>;
  } finally {
    await h.kill('SIGTERM');
  }
}

test('log times are ISO 8601 UTC by default', async () => {
  const line = await firstLine('');
  assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(Math.abs(Date.parse(String(line.time)) - Date.now()) < 10 * 60_000, 'and it is now');
});

test('[log] time = "epoch" writes milliseconds since 1970', async () => {
  const line = await firstLine('[log]\ntime = "epoch"\n');
  assert.equal(typeof line.time, 'number');
  assert.ok(Math.abs(Number(line.time) - Date.now()) < 10 * 60_000, 'and it is now');
});
