/**
 * test/ops/verify-cli — `halcyon verify list | show | forget` against a real
 * spawned server whose relay route verifies recipients (verify = "probe") to
 * a recording remote: the story of a user created at the remote after a
 * probe found the address unknown. The cached 550 keeps refusing it without
 * a new probe; `verify forget` makes the next RCPT probe again, and it is
 * accepted. The remote's RCPT log counts the probes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { startRemote, type Remote } from '../support/remote-smtp.js';
import { RawSmtpClient } from '../support/smtp-client.js';

let remote: Remote;
let h: SpawnedHalcyon;
let created = false;

before(async () => {
  remote = await startRemote({ rcpt: (rcpt) => (rcpt === 'new@sink.test' && !created ? '550 5.1.1 <new@sink.test> no such user' : undefined) });
  h = await spawnHalcyon(`
[routes."sink.test"]
hosts = ["127.0.0.1:${remote.port}"]
verify = "probe"
tls = "none"
`);
});
after(async () => {
  await h.kill('SIGTERM');
  await remote.close();
});

const cli = (...args: string[]) => runCli(['verify', ...args, '--config', h.configFile]);
const probesFor = (addr: string): number => remote.commands.filter((c) => c.line === `RCPT TO:<${addr}>`).length;

async function rcpt(addr: string): Promise<number> {
  const c = await RawSmtpClient.connect(h.port);
  try {
    await c.read();
    await c.expect('EHLO client.test', 250);
    await c.expect('MAIL FROM:<alice@client.test>', 250);
    return (await c.cmd(`RCPT TO:<${addr}>`, 15_000)).code;
  } finally {
    c.close();
  }
}

test('a cached 550 refuses without probing; verify forget makes the next RCPT probe again', { timeout: 60_000 }, async () => {
  assert.equal(await rcpt('new@sink.test'), 550);
  assert.equal(await rcpt('new@sink.test'), 550, 'from the cache');
  assert.equal(probesFor('new@sink.test'), 1, 'one probe for two RCPTs');

  const list = await cli('list', '--json');
  assert.equal(list.code, 0, list.stderr);
  const rows = JSON.parse(list.stdout) as { address: string; verdict: string; reply: { code: number; text: string } }[];
  assert.deepEqual(rows.map((r) => [r.address, r.verdict, r.reply.code]), [['new@sink.test', 'absent', 550]]);
  const text = await cli('list');
  assert.match(text.stdout, /^ADDRESS\s+VERDICT/m);
  assert.match(text.stdout, /new@sink\.test\s+absent\s+.*550 5\.1\.1 <new@sink\.test> no such user/);

  // The user is created at the remote; the cache does not know yet.
  created = true;
  assert.equal(await rcpt('new@sink.test'), 550, 'still the cached answer');
  const forget = await cli('forget', 'New@Sink.test');
  assert.equal(forget.code, 0, forget.stderr);
  assert.match(forget.stdout, /forgot the cached answer for new@sink\.test/);
  const show = await cli('show', 'new@sink.test');
  assert.equal(show.code, 1, 'nothing cached any more');
  assert.equal(await rcpt('new@sink.test'), 250, 'probed again, and accepted');
  assert.equal(probesFor('new@sink.test'), 2);
  const shown = JSON.parse((await cli('show', 'new@sink.test', '--json')).stdout) as { verdict: string };
  assert.equal(shown.verdict, 'exists');
  assert.equal(remote.transactions.length, 0, 'probes never sent DATA');
});
