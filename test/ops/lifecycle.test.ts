/**
 * test/ops/lifecycle — SIGTERM under load (every message that got a 250 is
 * in the queue after the stop, and the process exits 0) and SIGHUP with a
 * valid config (applied to new sessions, open connections kept) and an
 * invalid one (refused, errors logged, the old config stays).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { freePort, queueList, spawnHalcyon } from '../support/halcyon.js';
import { RawSmtpClient, queuedId } from '../support/smtp-client.js';
import { logLines, until } from './helpers.js';

describe('lifecycle', () => {
  test('SIGTERM during a load: exit 0, and every 250 is in the queue afterwards', async () => {
    const dead = await freePort();
    const h = await spawnHalcyon(`[routes]\n"dead.test" = "127.0.0.1:${dead}"\n[delivery]\nretry_initial = "1h"\n`);
    const accepted: string[] = [];
    const refusals: string[] = [];
    let stopSent = false;
    const client = async (n: number) => {
      for (let i = 0; i < 10; i++) {
        let c: RawSmtpClient;
        try {
          c = await RawSmtpClient.connect(h.port);
        } catch {
          return; // the listener is gone
        }
        try {
          const greeting = await c.read();
          if (greeting.code !== 220) {
            refusals.push(`${greeting.code} ${greeting.enhanced ?? ''} ${stopSent}`);
            return;
          }
          const r = await c.send({ from: 'load@load.test', to: [`r${n}-${i}@dead.test`], content: `Subject: ${n}/${i}\r\n\r\nload\r\n` });
          const id = queuedId(r);
          if (id) accepted.push(id);
          await c.cmd('QUIT').catch(() => undefined);
        } catch {
          // A session told 421 mid-way, or closed: that message was not acknowledged, so it need not be queued.
        } finally {
          c.close();
        }
      }
    };
    const clients = Array.from({ length: 8 }, (_, n) => client(n));
    await until('some messages accepted', () => accepted.length >= 12);
    stopSent = true;
    const exit = h.kill('SIGTERM');
    await Promise.all(clients);
    assert.deepEqual(await exit, { code: 0, signal: null });
    assert.ok(accepted.length >= 12);
    // Connections refused while draining are told why, and only after the signal.
    for (const r of refusals) assert.equal(r, '421 4.3.2 true');
    const queued = new Set((await queueList(h.configFile)).map((e) => e.message.id));
    for (const id of accepted) assert.ok(queued.has(id), `${id} got 250 but is not in the queue`);
    rmSync(h.dataDir, { recursive: true, force: true });
  });

  test('SIGHUP: a valid config is applied without dropping connections; an invalid one is refused', async () => {
    const h = await spawnHalcyon('log_level = "info"\n[smtp]\nmax_recipients = 5\n', { captureStdout: true });
    try {
      const open = await RawSmtpClient.connect(h.port);
      assert.equal((await open.read()).code, 220);
      await open.expect('EHLO before.test', 250);

      const original = readFileSync(h.configFile, 'utf8');
      writeFileSync(h.configFile, original.replace('max_recipients = 5', 'max_recipients = 2'));
      h.child.kill('SIGHUP');
      await until('the reload logged', () => logLines(h).some((l) => l.event === 'reloaded'));

      // The connection opened before the reload is still served.
      await open.expect('NOOP', 250);
      await open.expect('MAIL FROM:<a@localhost>', 250);
      open.close();

      // A new session has the new limit: the third RCPT gets 452 4.5.3.
      const c = await RawSmtpClient.connect(h.port);
      assert.equal((await c.read()).code, 220);
      await c.expect('EHLO after.test', 250);
      await c.expect('MAIL FROM:<a@localhost>', 250);
      await c.expect('RCPT TO:<x1@example.test>', 250);
      await c.expect('RCPT TO:<x2@example.test>', 250);
      const third = await c.cmd('RCPT TO:<x3@example.test>');
      assert.equal(third.code, 452);
      assert.equal(third.enhanced, '4.5.3');
      c.close();

      // An invalid config: refused with its errors, the old config stays and the server keeps serving.
      writeFileSync(h.configFile, `${original.replace('max_recipients = 5', 'max_recipients = 2')}\n[bogus]\nkey = 1\n`);
      h.child.kill('SIGHUP');
      const refused = await until('the refusal logged', () => logLines(h).find((l) => l.event === 'reload_refused'));
      assert.match(JSON.stringify(refused.problems), /bogus/);
      const d = await RawSmtpClient.connect(h.port);
      assert.equal((await d.read()).code, 220);
      await d.expect('EHLO again.test', 250);
      await d.expect('MAIL FROM:<a@localhost>', 250);
      await d.expect('RCPT TO:<p1@example.test>', 250);
      await d.expect('RCPT TO:<p2@example.test>', 250);
      assert.equal((await d.cmd('RCPT TO:<p3@example.test>')).code, 452); // still 2, from the last good config
      d.close();
    } finally {
      await h.kill('SIGTERM');
      rmSync(h.dataDir, { recursive: true, force: true });
    }
  });
});
