/**
 * scripts/soak — kill -9 loops (`npm run soak`; not part of `npm test`).
 *
 * Starts `halcyon serve` (the compiled CLI) relaying to a counting remote,
 * sends messages over SMTP from a few clients at once, and kills the server
 * with SIGKILL at a random moment of each round, then starts it again on the
 * same data_dir. Every message has its own recipient address, so the remote
 * can count each one. At the end it waits for the queue to drain and prints:
 * accepted (got 250), delivered, LOST (accepted, never delivered) and
 * DUPLICATED (delivered more than once: RFC 1047 duplicates, expected to be
 * rare, never zero-cost). Exit 1 when anything was lost.
 *
 * Bounded: SOAK_ROUNDS (default 5) kills, SOAK_MESSAGES per round (default
 * 600), SOAK_CLIENTS concurrent senders (default 4), SOAK_SECONDS overall
 * (default 300). Loopback only, ports and data_dir are fresh temporaries.
 */
import { rmSync } from 'node:fs';
import { spawnHalcyon, type SpawnedHalcyon } from '../test/support/halcyon.js';
import { startRemote } from '../test/support/remote-smtp.js';
import { RawSmtpClient } from '../test/support/smtp-client.js';

const ROUNDS = Number(process.env.SOAK_ROUNDS ?? 5);
const PER_ROUND = Number(process.env.SOAK_MESSAGES ?? 600);
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 4);
const DEADLINE = Date.now() + Number(process.env.SOAK_SECONDS ?? 300) * 1000;

const remote = await startRemote({ extensions: { pipelining: true, size: 10_000_000, enhancedStatusCodes: true } });
const toml = `[routes]\n"sink.test" = "127.0.0.1:${remote.port}"\n[delivery]\nretry_initial = "1s"\ndestination_backoff = "1s"\n`;
const accepted = new Set<string>();
let next = 0;
let h: SpawnedHalcyon = await spawnHalcyon(toml);
const { dataDir, port } = h;

/** One client sending messages until the round's count is reached or the server dies under it. */
async function sender(until: number): Promise<void> {
  let c: RawSmtpClient | undefined;
  try {
    c = await RawSmtpClient.connect(port);
    await c.read();
    await c.expect('EHLO soak.test', 250);
    while (next < until && Date.now() < DEADLINE) {
      const rcpt = `m${next++}@sink.test`;
      await c.expect('MAIL FROM:<soak@src.test>', 250);
      await c.expect(`RCPT TO:<${rcpt}>`, 250);
      await c.expect('DATA', 354);
      c.write(`Subject: ${rcpt}\r\n\r\nsoak\r\n`);
      const r = await c.cmd('.');
      if (r.code === 250) accepted.add(rcpt);
    }
  } catch { /* the server was killed under us: what got 250 is counted */ } finally {
    c?.close();
  }
}

const t0 = Date.now();
for (let round = 1; round <= ROUNDS && Date.now() < DEADLINE; round++) {
  const until = next + PER_ROUND;
  const senders = Array.from({ length: CLIENTS }, () => sender(until));
  // Kill somewhere in the middle of the round's sending (and delivering): after 30–90 % of its messages got 250.
  const target = accepted.size + Math.floor(PER_ROUND * (0.3 + 0.6 * Math.random()));
  for (const stop = Date.now() + 30_000; accepted.size < target && next < until && Date.now() < Math.min(stop, DEADLINE);) await new Promise((r) => setTimeout(r, 5));
  await h.kill('SIGKILL');
  await Promise.all(senders);
  process.stdout.write(`round ${round}: killed -9; ${accepted.size} accepted so far, ${remote.transactions.length} delivered so far\n`);
  h = await spawnHalcyon(toml, { dataDir, port });
}
// Drain: every accepted message must reach the remote (bounded by the deadline plus a minute).
const delivered = () => new Set(remote.transactions.flatMap((t) => t.rcpts));
const drainUntil = Math.max(DEADLINE, Date.now()) + 60_000;
while ([...accepted].some((a) => !delivered().has(a)) && Date.now() < drainUntil) await new Promise((r) => setTimeout(r, 250));
await h.kill('SIGTERM');
await remote.close();

const counts = new Map<string, number>();
for (const t of remote.transactions) for (const r of t.rcpts) counts.set(r, (counts.get(r) ?? 0) + 1);
const lost = [...accepted].filter((a) => !counts.has(a));
const duplicated = [...counts.values()].filter((n) => n > 1).reduce((s, n) => s + n - 1, 0);
const unknown = [...counts.keys()].filter((a) => !accepted.has(a)).length;
process.stdout.write(`soak: ${ROUNDS} kill -9 rounds, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
process.stdout.write(`accepted ${accepted.size}, delivered ${counts.size} distinct (${remote.transactions.length} transactions)\n`);
process.stdout.write(`lost ${lost.length}${lost.length ? ` (${lost.slice(0, 10).join(', ')}…)` : ''}, duplicated ${duplicated} (${((100 * duplicated) / Math.max(1, accepted.size)).toFixed(2)} %)\n`);
process.stdout.write(`delivered without a 250 seen by the client (killed between commit and reply): ${unknown}\n`);
rmSync(dataDir, { recursive: true, force: true });
process.exit(lost.length > 0 ? 1 : 0);
