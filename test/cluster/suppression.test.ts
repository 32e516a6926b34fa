/**
 * Two `halcyon serve` nodes on one PostgreSQL queue share the suppression
 * list: a hard bounce delivered by either node suppresses the address for
 * both (RCPT refused at the other node, the remote saw one RCPT), and an
 * entry an operator adds through one node's CLI is in force at the other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rcptsFor, startRemote } from '../support/remote-smtp.js';
import { rcptReply } from '../support/smtp-client.js';
import { message, submit } from '../support/postfix.js';
import { pgUnavailable } from '../support/postgres.js';
import { until } from '../ops/helpers.js';
import { startCluster } from './nodes.js';

test('two nodes share the suppression list', { timeout: 120_000, skip: await pgUnavailable() }, async () => {
  const remote = await startRemote({ extensions: { enhancedStatusCodes: true }, rcpt: (r) => (r.startsWith('gone') ? `550 5.1.1 <${r}>: User unknown` : undefined) });
  const cluster = await startCluster(2, remote.port);
  try {
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    await submit(a.port, { from: '', to: ['gone@remote.test'], content: message('sender@client.test', ['gone@remote.test'], 'cluster suppression') });
    const listed = await until('the entry, seen through node 1', async () => {
      const l = JSON.parse(await cluster.cli(1, 'suppression', 'list', '--json')) as { address: string; class: string }[];
      return l.length > 0 ? l : undefined;
    }, 400);
    assert.deepEqual(listed.map((e) => [e.address, e.class]), [['gone@remote.test', 'InvalidRecipient']]);
    const atB = await rcptReply(b.port, 'gone@remote.test');
    assert.equal(atB.code, 550);
    assert.match(atB.text, /recipient suppressed since/);
    assert.equal((await rcptReply(a.port, 'gone@remote.test')).code, 550);
    assert.equal(rcptsFor(remote, 'gone@remote.test'), 1, 'the remote saw one RCPT for it');

    await cluster.cli(1, 'suppression', 'add', 'stop@remote.test', '--reason', 'unsubscribed');
    assert.equal((await rcptReply(a.port, 'stop@remote.test')).code, 550, 'an entry added through node 1 holds at node 0');
    await cluster.cli(0, 'suppression', 'remove', 'stop@remote.test');
    assert.equal((await rcptReply(b.port, 'stop@remote.test')).code, 250, 'and its removal through node 0 at node 1');
  } finally {
    await cluster.stop();
    await remote.close();
  }
});
