/**
 * test/ops/cli — every queue command against a running server (through the
 * admin API) in text and --json, the same commands against the stopped
 * data_dir (direct store), the delivery log lines for sent/deferred/bounced,
 * and /metrics after known traffic.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, type SpawnedHalcyon } from '../support/halcyon.js';
import type { Remote } from '../support/remote-smtp.js';
import { api, logLines, parseProm, until } from './helpers.js';
import { startPostmasterScene, type PostmasterScene } from './scene.js';

interface Entry { message: { id: string; held: boolean; sender: string }; recipients: { address: string; state: string }[] }

describe('halcyon queue / destinations / metrics against a running server', () => {
  let remote: Remote;
  let h: SpawnedHalcyon;
  let deadPort: number;
  let scene: PostmasterScene;
  const cli = (...args: string[]) => runCli([...args, '--config', h.configFile]);
  const sendmail = (args: string[], input: string) => runCli(['sendmail', '-C', h.configFile, ...args], { input });

  before(async () => {
    scene = await startPostmasterScene({ logInfo: true, captureStdout: true });
    ({ h, remote, deadPort } = scene);
  });
  after(() => scene.close());

  test('delivery log lines carry queue id, sender, recipient, relay, delay, DSN status, status and reply', async () => {
    const r = await sendmail(['-f', 'alice@sink.test', 'ok@sink.test', 'bad@sink.test', 'later@sink.test'], 'Subject: three\n\nhello\n');
    assert.equal(r.code, 0, r.stderr);
    const lines = await until('three delivery lines', () => {
      const l = logLines(h).filter((x) => x.event === 'delivery' && String(x.to).endsWith('@sink.test'));
      return l.length >= 3 && l;
    });
    const by = (to: string) => lines.find((l) => l.to === to)!;
    const accepted = logLines(h).find((l) => l.event === 'accepted')!;
    for (const [to, status, dsn, code] of [['ok@sink.test', 'sent', undefined, '250'], ['bad@sink.test', 'bounced', '5.1.1', '550'], ['later@sink.test', 'deferred', '4.2.0', '451']] as const) {
      const l = by(to);
      assert.equal(l.status, status, to);
      assert.equal(l.queue_id, accepted.queue_id);
      assert.equal(l.from, 'alice@sink.test');
      assert.match(String(l.relay), new RegExp(`^127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${remote.port}$`));
      assert.equal(typeof l.delay, 'number');
      if (dsn) assert.equal(l.dsn, dsn);
      assert.match(String(l.reply), new RegExp(`^${code}`));
    }
  });

  test('queue list, show, hold, release, flush, destinations: text and --json', async () => {
    const r = await sendmail(['-f', 'bob@sink.test', 'carol@dead.test'], 'Subject: stuck\n\nbody\n');
    assert.equal(r.code, 0, r.stderr);
    const list = await until('the stuck message deferred', async () => {
      const l = (await api(h.httpPort!, 'GET', '/api/queue?domain=dead.test')).json as Entry[];
      return l.length === 1 && l[0]!.recipients[0]!.state === 'deferred' && l;
    });
    const id = list[0]!.message.id;

    const text = await cli('queue', 'list', '--state', 'deferred');
    assert.equal(text.code, 0);
    assert.match(text.stdout, new RegExp(`${id}.*<bob@sink.test>`));
    assert.match(text.stdout, /deferred +<carol@dead\.test>/);
    assert.match(text.stdout, /ECONNREFUSED|connect/);

    const show = await cli('queue', 'show', id);
    assert.match(show.stdout, /subject: +stuck/);
    assert.match(show.stdout, /<carol@dead\.test> +deferred/);
    const detail = JSON.parse((await cli('queue', 'show', id, '--json')).stdout) as { recipients: { history: { state: string }[] }[]; headers: Record<string, string> };
    assert.equal(detail.headers.subject, 'stuck');
    assert.ok(detail.recipients[0]!.history.length >= 1);
    assert.equal((await cli('queue', 'show', '0000000000000000')).code, 3);

    const dests = JSON.parse((await cli('destinations', '--json')).stdout) as { key: string; health: string; queued: number }[];
    const dead = dests.find((d) => d.key.includes(String(deadPort)));
    assert.ok(dead, JSON.stringify(dests));
    assert.equal(dead.health, 'backoff');
    assert.equal(dead.queued, 1);
    assert.match((await cli('destinations')).stdout, new RegExp(`${dead.key.replace(/[.]/g, '\\.')} +backoff +1 `));

    assert.equal((await cli('queue', 'hold', id)).code, 0);
    let e = JSON.parse((await cli('queue', 'list', '--json', '--domain', 'dead.test')).stdout) as Entry[];
    assert.equal(e[0]!.message.held, true);
    assert.match((await cli('queue', 'list')).stdout, /\(held\)/);
    const rel = JSON.parse((await cli('queue', 'release', '--domain', 'dead.test', '--json')).stdout) as { ids: string[] };
    assert.deepEqual(rel.ids, [id]);
    e = JSON.parse((await cli('queue', 'list', '--json', '--domain', 'dead.test')).stdout) as Entry[];
    assert.equal(e[0]!.message.held, false);

    const flush = JSON.parse((await cli('queue', 'flush', 'dead.test', '--force', '--json')).stdout) as { flushed: number; reset: string[] };
    assert.equal(flush.flushed, 1);
    assert.deepEqual(flush.reset, [dead.key]);
    // Flushed and out of backoff, it is tried again (and fails again: a second attempt in its history).
    await until('a second attempt', async () => {
      const d = (await api(h.httpPort!, 'GET', `/api/queue/${id}`)).json as { recipients: { history: unknown[] }[] };
      return d.recipients[0]!.history.length >= 2;
    });
    const reset = await cli('destinations', 'reset', dead.key, '--json');
    assert.equal(reset.code, 0, reset.stderr);
    assert.equal((JSON.parse(reset.stdout) as { flushed: number }).flushed, 1);
    assert.equal((await cli('destinations', 'reset', 'no-such-destination')).code, 3);
  });

  test('queue bounce fails the recipient with 5.0.0 and the sender gets a DSN', async () => {
    await sendmail(['-f', 'dave@sink.test', 'erin@dead.test'], 'Subject: bounce me\n\nx\n');
    const l = JSON.parse((await cli('queue', 'list', '--json', '--domain', 'dead.test')).stdout) as Entry[];
    const id = l.find((x) => x.message.sender === 'dave@sink.test')!.message.id;
    const r = await cli('queue', 'bounce', id, '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { bounced: 1, skipped: 0 });
    await remote.waitFor(() => remote.transactions.some((t) => t.mailFrom === '' && t.rcpts.includes('dave@sink.test')), 15_000);
    const dsn = remote.transactions.find((t) => t.mailFrom === '' && t.rcpts.includes('dave@sink.test'))!;
    assert.match(dsn.data.toString(), /^Status: 5\.0\.0\r$/m);
    assert.match(dsn.data.toString(), /^Final-Recipient: rfc822; erin@dead\.test\r$/m);
    // The store keeps the administrator's reply as the recipient's last reply (seen by `queue show` until removal).
  });

  test('queue delete refuses without --yes off a terminal, deletes with it', async () => {
    const e = JSON.parse((await cli('queue', 'list', '--json', '--domain', 'dead.test')).stdout) as Entry[];
    const id = e.find((x) => x.message.sender === 'bob@sink.test')!.message.id;
    const refused = await cli('queue', 'delete', id);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--yes/);
    assert.ok((JSON.parse((await cli('queue', 'list', '--json')).stdout) as Entry[]).some((x) => x.message.id === id));
    const del = await cli('queue', 'delete', id, '--yes', '--json');
    assert.equal(del.code, 0, del.stderr);
    assert.deepEqual(JSON.parse(del.stdout), { deleted: 1, requested: 1 });
    assert.ok(!(JSON.parse((await cli('queue', 'list', '--json')).stdout) as Entry[]).some((x) => x.message.id === id));
    assert.equal((await cli('queue', 'delete', id, '--yes')).code, 3);
  });

  test('the admin API injects, 404s unknown ids and serves the dashboard', async () => {
    const port = h.httpPort!;
    const inj = await api(port, 'POST', '/api/messages', { from: 'api@sink.test', to: ['ok2@sink.test'], content: 'Subject: via api\r\n\r\nhi\r\n' });
    assert.equal(inj.status, 201, inj.text);
    const id = (inj.json as { id: string }).id;
    await remote.waitFor(() => remote.transactions.some((t) => t.rcpts.includes('ok2@sink.test')), 15_000);
    const t = remote.transactions.find((x) => x.rcpts.includes('ok2@sink.test'))!;
    assert.equal(t.mailFrom, 'api@sink.test');
    assert.match(t.data.toString(), new RegExp(`with HTTP id ${id}`));
    assert.equal((await api(port, 'GET', '/api/queue/0000000000000000')).status, 404);
    assert.equal((await api(port, 'POST', '/api/messages', { from: 'x@sink.test', to: [] , content: 'x' })).status, 400);
    assert.equal((await api(port, 'PUT', '/api/queue')).status, 405);
    const dash = await api(port, 'GET', '/');
    assert.equal(dash.status, 200);
    assert.match(dash.text, /<script type=module src="\/ui\/main\.js"><\/script>/); // the page is built in the browser (test/ops/dashboard-browser)
  });

  test('/metrics reflects the traffic so far', async () => {
    const res = await api(h.httpPort!, 'GET', '/metrics');
    assert.equal(res.status, 200);
    const m = parseProm(res.text);
    // Accepted: 3 sendmail submissions + 1 API injection (DSNs are generated, not accepted).
    assert.equal(m('halcyon_messages_accepted_total'), 4);
    assert.ok((m('halcyon_recipients_total', { status: 'sent' }) ?? 0) >= 2); // ok@, ok2@ (and the DSN)
    assert.equal(m('halcyon_recipients_total', { status: 'bounced' }), 2); // bad@, and the administrator's bounce
    assert.ok((m('halcyon_recipients_total', { status: 'deferred' }) ?? 0) >= 3); // later@, carol@ twice, erin@
    assert.ok((m('halcyon_delivery_latency_seconds_count') ?? 0) >= 2);
    assert.equal(typeof m('halcyon_queue_recipients', { state: 'deferred' }), 'number');
    assert.ok((m('halcyon_queue_recipients', { state: 'deferred' }) ?? 0) >= 1); // later@ waits for its retry
  });

  test('the same commands work on the stopped data_dir', async () => {
    await h.kill('SIGTERM');
    const list = await cli('queue', 'list', '--json');
    assert.equal(list.code, 0, list.stderr);
    const entries = JSON.parse(list.stdout) as Entry[];
    const later = entries.find((e) => e.recipients.some((r) => r.address === 'later@sink.test'));
    assert.ok(later, list.stdout);
    const id = later.message.id;
    assert.match((await cli('queue', 'show', id)).stdout, /later@sink\.test> +deferred/);
    assert.equal((JSON.parse((await cli('queue', 'hold', id, '--json')).stdout) as { ids: string[] }).ids[0], id);
    assert.equal((JSON.parse((await cli('queue', 'list', '--json')).stdout) as Entry[]).find((e) => e.message.id === id)!.message.held, true);
    // Held: made due, but nothing can go until it is released, and flush says so.
    const flushed = JSON.parse((await cli('queue', 'flush', id, '--json')).stdout) as { flushed: number; held?: number };
    assert.deepEqual([flushed.flushed, flushed.held], [0, 1]);
    assert.ok(Array.isArray(JSON.parse((await cli('destinations', '--json')).stdout)));
    assert.match((await cli('destinations')).stdout, /DESTINATION/);
    const del = await cli('queue', 'delete', '--domain', 'sink.test', '--yes');
    assert.equal(del.code, 0, del.stderr);
    assert.match(del.stdout, /message\(s\) deleted/);
    assert.match(del.stderr, /deleting: \d+\/\d+/); // plain progress lines off a terminal
    assert.match((await cli('queue', 'list', '--domain', 'sink.test')).stdout, /Mail queue is empty/);
  });
});
