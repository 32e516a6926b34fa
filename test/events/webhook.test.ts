/**
 * The webhook sink through an outage (test/events/outage): an HTTP receiver on
 * loopback, down for 30 s while halcyon relays 100 messages and is restarted
 * and killed; once up it checks every request's signature and timestamp
 * (events/sign, as docs/events.md tells a receiver to), and drops the
 * connection without answering its first request after coming back (a lost
 * acknowledgment: only those events may arrive twice).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { verify } from '../../src/events/sign.js';
import type { HalcyonEvent } from '../../src/queue/event.js';
import { freePort } from '../support/halcyon.js';
import { outageScenario } from './outage.js';

const SECRET = 'w3bh00k-secret';

test('webhook: receiver down for 30 s, a restart and a kill -9: every event arrives, every signature verifies', { timeout: 240_000 }, async () => {
  const port = await freePort();
  const received: HalcyonEvent[] = [];
  const lost = new Set<string>();
  let requests = 0;
  let badSignatures = 0;
  let server: http.Server | undefined;
  const figures = await outageScenario({
    name: 'app',
    toml: `[[events.webhooks]]\nname = "app"\nurl = "http://127.0.0.1:${port}/hooks/halcyon"\nsecret = "${SECRET}"\nbatch = 25\ntimeout = "5s"\n`,
    async down() {
      const s = server;
      server = undefined;
      if (s) await new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); });
    },
    up() {
      return new Promise<void>((resolve, reject) => {
        const s = http.createServer((req, res) => {
          const chunks: Buffer[] = [];
          req.on('data', (c: Buffer) => chunks.push(c));
          req.on('end', () => {
            const body = Buffer.concat(chunks);
            const ok = verify(SECRET, req.headers['x-halcyon-timestamp'] as string | undefined, req.headers['x-halcyon-signature'] as string | undefined,
              body, Math.floor(Date.now() / 1000));
            if (!ok) {
              badSignatures++;
              res.writeHead(401).end('bad signature');
              return;
            }
            const batch = JSON.parse(body.toString('utf8')) as HalcyonEvent[];
            received.push(...batch);
            if (++requests === 1) {
              // Took the events, but the answer never reaches halcyon.
              for (const e of batch) lost.add(e.id);
              req.socket.destroy();
              return;
            }
            res.writeHead(204).end();
          });
        });
        s.once('error', reject);
        s.listen(port, '127.0.0.1', () => { server = s; resolve(); });
      });
    },
    received: () => received,
    lostAck: () => lost,
  }, 30_000);
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  assert.equal(badSignatures, 0);
  assert.ok(lost.size > 0, 'the lost acknowledgment happened');
  assert.ok(figures.duplicates <= lost.size, `duplicates ${figures.duplicates} > lost ${lost.size}`);
  process.stdout.write(`# webhook outage: ${figures.events} events received, ${figures.distinct} distinct, ${figures.duplicates} duplicates (lost ack of ${lost.size}), ${figures.waitingWhileDown} waiting while down, ${requests} requests\n`);
});
