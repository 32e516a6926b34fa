/**
 * test/ops/scene — the queue a postmaster's tools are tried on: a spawned
 * `halcyon serve` (admin API on) with two routed domains. `sink.test` goes to
 * a recording remote that answers 550 5.1.1 to `bad@…`, the given reply to
 * `later@…` and 250 otherwise; `dead.test` goes to a port nobody listens on
 * (connection refused: deferred, destination in backoff). Retries and the
 * backoff are an hour, so what is deferred stays in the queue for the test.
 * Sends no mail and asserts nothing; the tests do.
 */
import { freePort, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { startRemote, type Remote } from '../support/remote-smtp.js';

export interface PostmasterScene {
  readonly h: SpawnedHalcyon;
  readonly remote: Remote;
  readonly deadPort: number;
  close(): Promise<void>;
}

export async function startPostmasterScene(opts: { laterReply?: string; logInfo?: boolean; captureStdout?: boolean } = {}): Promise<PostmasterScene> {
  const later = opts.laterReply ?? '451 4.2.0 try later';
  const remote = await startRemote({
    rcpt: (rcpt) => rcpt.startsWith('bad@') ? '550 5.1.1 no such user' : rcpt.startsWith('later@') ? later : undefined,
  });
  const deadPort = await freePort();
  const h = await spawnHalcyon(`${opts.logInfo ? 'log_level = "info"\n' : ''}
[delivery]
retry_initial = "1h"
destination_backoff = "1h"
[routes]
"sink.test" = "127.0.0.1:${remote.port}"
"dead.test" = "127.0.0.1:${deadPort}"
`, { http: true, captureStdout: opts.captureStdout });
  return {
    h, remote, deadPort,
    async close() {
      await h.kill('SIGTERM');
      await remote.close();
    },
  };
}
