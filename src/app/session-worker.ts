/**
 * app/session-worker — an SMTP session worker thread (app/session-workers
 * starts them; decision 0017): its own listener on every smtp/submission
 * address (SO_REUSEPORT), the sessions the kernel gives it, SPF/DKIM/DMARC
 * checking, the DNSBL look-ups, the intake (trace header, DKIM signing) and
 * the queue writes of what it accepts, over its own port to the queue.
 *
 * What the node decides (admission, rates, AUTH lockouts, recipient
 * verification, the queue's health) it asks of, or hears from, the main
 * thread (app/node-link); what it counts and logs it tells it. It swaps its
 * configuration when the main thread sends a reloaded one. No scheduler, no
 * delivery, no admin API here.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { durationMs, sizeBytes } from '../config/units.js';
import { Live } from '../config/live.js';
import { createAuthResolver } from '../inbound/auth-dns.js';
import { loadTlsContext } from '../inbound/tls-cert.js';
import { createLogger } from '../log.js';
import { useIdLane } from '../queue/ids.js';
import { QueueSpace } from '../queue/space.js';
import { WorkerQueue } from '../queue/sqlite/worker-store.js';
import { buildInbound, intakeFor } from './inbound.js';
import { NodeLink } from './node-link.js';
import { buildRunning, type Running } from './running.js';
import type { FromWorker, SessionWorkerData, ToWorker } from './session-protocol.js';

const port = parentPort;
if (!port) throw new Error('session-worker must run in a worker thread');
const data = workerData as SessionWorkerData;
const cfg = data.config;
const post = (m: FromWorker): void => port.postMessage(m);

// Ids made here never meet another thread's (queue/ids).
useIdLane({ index: data.index, lanes: data.lanes });
const link = new NodeLink(port);
const log = createLogger({ level: data.logLevel, format: 'json', time: cfg.log.time, destination: link.logStream() }).child({ node: cfg.node_id, worker: data.index });
const clock = Date.now;
const live = new Live<Running>(await buildRunning(cfg, cfg.data_dir, log));
live.current.aliases?.watch(durationMs(cfg.aliases.check_interval));
const store = WorkerQueue.overPort(data.queue, { clock });
const space = new QueueSpace(cfg.data_dir, () => sizeBytes(live.current.config.smtp.max_message_size));
const tlsContext = await loadTlsContext({ cert: cfg.tls.cert, key: cfg.tls.key, dataDir: cfg.data_dir, hostname: cfg.hostname });
const authDns = createAuthResolver({ servers: cfg.dns.servers, timeoutMs: durationMs(cfg.dns.timeout) });
const inbound = buildInbound(cfg, {
  live, log, clock, intake: intakeFor(live, store.messages, clock), suppressions: store.suppressions, space, tlsContext, authDns,
  node: link.node(() => live.current.config),
});

// Configuration changes are applied in order, one after another.
let reloading = Promise.resolve();
port.on('message', (msg: ToWorker) => {
  switch (msg.t) {
    case 'answer':
      return link.answer(msg);
    case 'health':
      link.trouble = msg.trouble;
      return;
    case 'config':
      reloading = reloading.then(async () => {
        const before = live.current.aliases;
        live.replace(await buildRunning(msg.config, cfg.data_dir, log, live.current));
        if (before !== live.current.aliases) before?.close();
        live.current.aliases?.watch(durationMs(msg.config.aliases.check_interval));
        log.level = msg.logLevel;
      }).catch((err: unknown) => log.error({ event: 'worker_reload_failed', err: (err as Error).message }, `session worker ${data.index}: reload failed; the configuration in force stays`))
        .finally(() => post({ t: 'reloaded' }));
      return;
    case 'drain':
      void inbound.drain(msg.deadlineMs).then(() => {
        link.flush();
        post({ t: 'drained' });
      });
      return;
    case 'close':
      void (async () => {
        await inbound.close();
        live.current.aliases?.close();
        link.flush();
        await store.close();
        port.close();
      })();
      return;
  }
});

try {
  post({ t: 'listening', listening: await inbound.listen(data.specs) });
} catch (err) {
  post({ t: 'start_failed', error: (err as Error).message });
}
