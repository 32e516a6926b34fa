/**
 * Envelope injection through the admin API and `halcyon sendmail` (issue 10,
 * item 1): a quoted local part keeps its quotes all the way to the remote, so
 * `"evil@attacker.test> RET=FULL ENVID=x"@src.test` is one address on the
 * wire, never a sender plus smuggled parameters. Checked on the command lines
 * a real remote received, parsed with the same pure parser the inbound
 * session uses; with the server running (HTTP) and stopped (data_dir).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePath } from '../../src/smtp/address.js';
import { isCommandError, parseCommand } from '../../src/smtp/command.js';
import { runCli, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { startRemote, type Remote } from '../support/remote-smtp.js';
import { api } from './helpers.js';

const EVIL_FROM = '"evil@attacker.test> RET=FULL ENVID=x"@src.test';
const EVIL_TO = '"victim@elsewhere.test>"@outside.test';

/** Each MAIL/RCPT line the remote saw, as the pure parser reads it. */
function parsed(remote: Remote, verb: 'MAIL' | 'RCPT') {
  return remote.commands.filter((c) => c.line.toUpperCase().startsWith(verb)).map((c) => {
    const cmd = parseCommand(c.line);
    assert.ok(!isCommandError(cmd) && (cmd.verb === 'MAIL' || cmd.verb === 'RCPT'), `remote got an unparsable line: ${c.line}`);
    const path = parsePath(cmd.path, { utf8: true, allowNull: true });
    assert.ok(!('error' in path), `remote got a bad path: ${c.line}`);
    return { line: c.line, local: path.mailbox?.local, domain: path.mailbox?.domain, params: cmd.params.split(' ').filter(Boolean) };
  });
}

describe('addresses with quoted local parts reach the remote intact', () => {
  let remote: Remote;
  let h: SpawnedHalcyon;
  const routes = () => `[routes]\n"src.test" = "127.0.0.1:${remote.port}"\n"outside.test" = "127.0.0.1:${remote.port}"\n`;
  const sawRcpt = (local: string) => remote.waitFor(() => remote.commands.some((c) => c.line.startsWith('RCPT') && c.line.includes(local)), 15_000);

  before(async () => {
    remote = await startRemote({ extensions: { pipelining: true, size: 10_000_000, dsn: true, enhancedStatusCodes: true } });
    h = await spawnHalcyon(routes(), { http: true });
  });
  after(async () => {
    await h.kill('SIGTERM');
    await remote.close();
  });

  test('POST /api/messages: the sender and a recipient stay one quoted address each', async () => {
    const r = await api(h.httpPort!, 'POST', '/api/messages', { from: EVIL_FROM, to: [EVIL_TO, 'plain@outside.test'], content: 'Subject: api\n\nx\n' });
    assert.equal(r.status, 201, r.text);
    await sawRcpt('plain@outside.test');
    await remote.waitFor(() => remote.transactions.length > 0, 15_000);
    const mail = parsed(remote, 'MAIL');
    assert.equal(mail.length, 1);
    assert.equal(mail[0]!.local, 'evil@attacker.test> RET=FULL ENVID=x');
    assert.equal(mail[0]!.domain, 'src.test');
    assert.ok(!mail[0]!.params.some((p) => /^(RET|ENVID)=/.test(p)), `no smuggled parameter: ${mail[0]!.line}`);
    const rcpts = parsed(remote, 'RCPT');
    assert.deepEqual(rcpts.map((x) => `${x.local}|${x.domain}`).sort(), ['plain|outside.test', 'victim@elsewhere.test>|outside.test']);
    assert.ok(!remote.commands.some((c) => /^RCPT TO:<victim@elsewhere\.test>/i.test(c.line)), 'no bare victim address on the wire');
  });

  test('sendmail -f with the server running, then stopped: the same', async () => {
    for (const [i, running] of [[1, true], [2, false]] as const) {
      remote.clear();
      if (!running) await h.kill('SIGTERM');
      const r = await runCli(['sendmail', '-C', h.configFile, '-f', '"evil@attacker.test> RET=FULL"@src.test', `sm${i}@outside.test`], { input: 'Subject: sm\n\nx\n' });
      assert.equal(r.code, 0, r.stderr);
      if (!running) h = await spawnHalcyon(routes(), { dataDir: h.dataDir, http: true });
      await sawRcpt(`sm${i}@outside.test`);
      const mail = parsed(remote, 'MAIL');
      assert.equal(mail.length, 1, mail.map((m) => m.line).join(' | '));
      assert.equal(mail[0]!.local, 'evil@attacker.test> RET=FULL');
      assert.ok(!mail[0]!.params.includes('RET=FULL'), `no smuggled RET (server ${running ? 'running' : 'stopped'}): ${mail[0]!.line}`);
    }
  });
});
