/**
 * A remote that answers EHLO with `250-` lines forever (issue 10, item 2):
 * Halcyon reads at most a bounded reply, hangs up, counts it as a
 * connection-level failure and backs the destination off; its memory does
 * not grow with what the remote sends. Real sockets, the whole app.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { destinationKey } from '../../src/delivery/route.js';
import { startHostileRemote } from '../support/hostile-remote.js';
import { startTestApp } from '../support/halcyon.js';

test('an endless EHLO reply: the client hangs up early, memory stays bounded, the destination backs off', async () => {
  const remote = await startHostileRemote({ capBytes: 128 * 1024 * 1024 });
  const routes = { 'hostile.test': `127.0.0.1:${remote.port}` };
  // A short command timeout so that, without the bound, the test fails in seconds rather than hanging on the EHLO read.
  const t = await startTestApp({ routes, delivery: { timeouts: { command: '8s' } } }, { scheduler: true });
  try {
    const rssBefore = process.memoryUsage().rss;
    await t.app.admin.inject({ from: 'a@src.test', to: ['victim@hostile.test'], content: 'Subject: x\n\nx\n' });
    const key = destinationKey('hostile.test', t.app.config.routes);
    // The destination's backoff and the recipient's deferral are two writes: wait for both.
    let dest;
    const deferred = async (): Promise<boolean> => (await t.app.store.recipients.listMessages({}))[0]?.recipients[0]?.state === 'deferred';
    for (let i = 0; i < 400; i++) {
      dest = await t.app.store.gate.getDestination(key);
      if (dest?.health === 'backoff' && remote.connections.every((c) => c.closedByClient || c.capReached) && await deferred()) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const grown = process.memoryUsage().rss - rssBefore;
    assert.ok(remote.connections.length >= 1, 'the client connected');
    for (const c of remote.connections) {
      assert.ok(c.closedByClient, `the client hung up (it let the remote write ${c.bytesWritten} bytes)`);
      // 64 KiB of reply is the limit; the rest is what sat in socket buffers when the client hung up.
      assert.ok(c.bytesWritten < 16 * 1024 * 1024, `the remote got to write only a bounded amount, not ${c.bytesWritten} bytes`);
    }
    assert.ok(grown < 64 * 1024 * 1024, `memory grew by ${Math.round(grown / 1048576)} MiB`);
    assert.equal(dest?.health, 'backoff', 'the destination is backed off');
    const [entry] = await t.app.store.recipients.listMessages({});
    const r = entry!.recipients[0]!;
    assert.equal(r.state, 'deferred');
    assert.match(r.lastReply?.text ?? '', /protocol violation/);
  } finally {
    await t.stop();
    await remote.close();
  }
});
