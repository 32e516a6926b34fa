/**
 * Recipient verification never storms a dead host: probes obey the
 * destination's backoff like deliveries do (invariant I5 for verification).
 *
 * The route points at a listener that counts the connections it accepts
 * and drops each one at once (a host that answers nothing). Time is a fake
 * clock: RCPTs for many different addresses come in rounds; between rounds
 * the clock moves past the backoff in force. Every RCPT hears 450 4.1.1,
 * none 250, and the host sees one connection per backoff step — not one per
 * RCPT. When the host comes back (it greets and answers RCPT), the probe
 * after the backoff brings the destination back to health.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startTestApp } from '../support/halcyon.js';
import { FakeClock } from '../support/fake-clock.js';
import { RawSmtpClient } from '../support/smtp-client.js';

const DOMAIN = 'dead.test';
const ROUNDS = 4;
const RCPTS_PER_ROUND = 25;

test('probes to a dead host obey its backoff: one connection per backoff step, whatever the number of RCPTs', { timeout: 60_000 }, async (t) => {
  let accepts = 0;
  let alive = false;
  const server = net.createServer((s) => {
    accepts++;
    if (!alive) return void s.destroy();
    // Back to life: a minimal SMTP server that knows nobody but ok@.
    s.write('220 back.test ESMTP\r\n');
    s.on('data', (d: Buffer) => {
      for (const l of d.toString('latin1').split('\r\n').filter(Boolean)) {
        if (/^EHLO/i.test(l)) s.write('250 back.test\r\n');
        else if (/^MAIL/i.test(l)) s.write('250 2.1.0 Ok\r\n');
        else if (/^RCPT TO:<ok@/i.test(l)) s.write('250 2.1.5 Ok\r\n');
        else if (/^RCPT/i.test(l)) s.write('550 5.1.1 <x> User unknown\r\n');
        else if (/^QUIT/i.test(l)) s.end('221 2.0.0 Bye\r\n');
        else s.write('250 2.0.0 Ok\r\n');
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as net.AddressInfo).port;

  const clock = new FakeClock();
  const h = await startTestApp({
    routes: { [DOMAIN]: { hosts: [`127.0.0.1:${port}`], verify: 'probe', tls: 'none' } },
    delivery: { destination_backoff: '1m', destination_backoff_max: '1h' },
  }, { clock: clock.now });
  t.after(() => h.stop());
  const key = `route:127.0.0.1:${port}`;

  const c = await RawSmtpClient.connect(h.port);
  assert.equal((await c.read()).code, 220);
  await c.expect('EHLO client.test', 250);
  await c.expect('MAIL FROM:<sender@client.test>', 250);

  const codes: number[] = [];
  const acceptsAfterRound: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < RCPTS_PER_ROUND; i++) {
      const r = await c.cmd(`RCPT TO:<user${round}-${i}@${DOMAIN}>`, 15_000);
      codes.push(r.code);
      if (r.code !== 450 || r.enhanced !== '4.1.1') assert.fail(`round ${round} rcpt ${i}: ${r.code} ${r.enhanced} ${r.lines.join(' ')}`);
    }
    acceptsAfterRound.push(accepts);
    const row = await h.app.store.gate.getDestination(key);
    assert.equal(row?.health, 'backoff');
    // Past the backoff in force (1m, 2m, 4m …): the next RCPT may make the one probe the gate grants.
    clock.set(row!.backoffUntil + 1);
  }
  assert.equal(codes.length, ROUNDS * RCPTS_PER_ROUND);
  assert.ok(codes.every((x) => x === 450), 'every RCPT deferred, none accepted');
  assert.deepEqual(acceptsAfterRound, [1, 2, 3, 4], `${ROUNDS * RCPTS_PER_ROUND} RCPTs, ${accepts} connections: one per backoff step`);
  const row = await h.app.store.gate.getDestination(key);
  assert.equal(row?.consecutiveFailures, ROUNDS);
  assert.equal(row?.backoffMs, 8 * 60_000, 'the backoff doubled per failed probe: 1m, 2m, 4m, 8m');
  assert.equal(h.app.verifier.stats.probes, ROUNDS);

  // The host comes back; the clock is past the backoff: one probe answers and the destination recovers.
  alive = true;
  const ok = await c.cmd(`RCPT TO:<ok@${DOMAIN}>`, 15_000);
  assert.equal(ok.code, 250, ok.lines.join(' '));
  assert.equal((await h.app.store.gate.getDestination(key))?.health, 'ok');
  const unknown = await c.cmd(`RCPT TO:<nobody@${DOMAIN}>`, 15_000);
  assert.equal(unknown.code, 550);
  assert.equal(unknown.enhanced, '5.1.1');
  assert.equal(accepts, ROUNDS + 2);
  c.close();
  t.diagnostic(`${ROUNDS * RCPTS_PER_ROUND} RCPTs to a dead host over ${ROUNDS} backoff steps: ${acceptsAfterRound.at(-1)} connections`);
});
