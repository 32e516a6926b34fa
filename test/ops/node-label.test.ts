/**
 * Logs and metrics name the node (issue 15): several nodes on one queue are
 * logged and scraped into one place, so every /metrics sample carries
 * `node="<node_id>"` and every log line a `node` field. The compiled
 * `halcyon serve` with a node_id of its own, a message through SMTP (so the
 * log has session, acceptance and delivery lines), then /metrics and the log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { spawnHalcyon } from '../support/halcyon.js';
import { startRemote } from '../support/remote-smtp.js';
import { RawSmtpClient } from '../support/smtp-client.js';

test('every /metrics sample and every log line names the node', { timeout: 60_000 }, async () => {
  const remote = await startRemote();
  const h = await spawnHalcyon(
    `node_id = "edge-7"\nlog_level = "info"\n[relay]\nnetworks = ["127.0.0.0/8"]\n[delivery]\ntls = "none"\nqueue_scan_interval = "200ms"\n[routes]\n"sink.test" = "127.0.0.1:${remote.port}"\n`,
    { http: true, captureStdout: true });
  try {
    const c = await RawSmtpClient.connect(h.port);
    await c.read();
    const end = await c.send({ from: 'a@client.test', to: ['b@sink.test'], content: 'Subject: node label\r\n\r\nhello\r\n' });
    assert.equal(end.code, 250);
    await c.cmd('QUIT');
    c.close();
    await remote.waitFor(() => remote.transactions.length === 1, 20_000);

    const res = await fetch(`http://127.0.0.1:${h.httpPort}/metrics`);
    assert.equal(res.status, 200);
    const samples = (await res.text()).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.ok(samples.length > 10, `samples: ${samples.length}`);
    assert.deepEqual(samples.filter((l) => !/[{,]node="edge-7"[,}]/.test(l)), [], 'every sample has node="edge-7"');
    assert.ok(samples.includes('halcyon_queue_up{node="edge-7"} 1'), 'the queue is up');
    assert.ok(samples.some((l) => l.startsWith('halcyon_messages_accepted_total{node="edge-7"} 1')));

    // Wait for the delivery line (logged after the remote's 250), then read every line.
    const lines = async () => h.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    for (let i = 0; i < 100 && !(await lines()).some((o) => o.event === 'delivery'); i++) await new Promise((r) => setTimeout(r, 100));
    const all = await lines();
    for (const event of ['listening', 'accepted', 'delivery']) assert.ok(all.some((o) => o.event === event), `a "${event}" line`);
    assert.deepEqual(all.filter((o) => o.node !== 'edge-7'), [], 'every log line has node "edge-7"');
    // Named once per line: a JSON object with the key twice would hide one of them.
    assert.deepEqual(h.stdout().split('\n').filter((l) => (l.match(/"node":/g) ?? []).length > 1), [], 'no line names the node twice');
  } finally {
    await h.kill('SIGTERM');
    rmSync(h.dataDir, { recursive: true, force: true });
    await remote.close();
  }
});
