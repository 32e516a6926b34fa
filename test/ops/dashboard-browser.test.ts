/**
 * test/ops/dashboard-browser — the dashboard in a real browser (Debian's
 * chromium driven by playwright-core, headless) against a spawned Halcyon
 * holding deferred (remote 451, and a refused connection), held and bounced
 * (remote 550) mail: the page loads under its CSP, a search finds a message,
 * its page shows each attempt's host, command and reply, hold and release go
 * through a confirmation step and change the queue (checked through the
 * API), recent failures are shown by bounce class and the suppression list
 * with why and when (an entry removed after a confirmation), and hostile
 * strings in a subject, a sender and a remote's reply are shown as text and
 * never run. A page on another origin cannot act (403,
 * nothing changes), while the CLI's HTTP backend still can. A second server
 * that requires the token is used with the browser's Basic auth prompt.
 *
 * Screenshots go to $HALCYON_TEST_OUTPUT (or a temp dir), printed as a
 * diagnostic. Skipped with a message when chromium is missing, failed
 * instead under HALCYON_REQUIRE_INTEROP=1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { haveTool, runCli, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import type { Remote } from '../support/remote-smtp.js';
import { api, until } from './helpers.js';
import { startPostmasterScene, type PostmasterScene } from './scene.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SCRIPT = '<script>window.__pwned=1</script>';
const IMG = '"><img src=x onerror=window.__pwned=1>';
const HOSTILE_SENDER = `"${SCRIPT}"@example.test`;
const HOSTILE_REPLY = `451 4.2.0 ${SCRIPT} ${IMG} greylisted`;

interface Entry { message: { id: string; held: boolean; sender: string }; recipients: { address: string; state: string }[] }

const outDir = process.env.HALCYON_TEST_OUTPUT ?? join(tmpdir(), 'halcyon-test-output');

async function launch(userDataDir: string, opts: { httpCredentials?: { username: string; password: string } } = {}): Promise<BrowserContext> {
  const { chromium } = await import('playwright-core');
  return chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 }, ...opts });
}

/** A POST/DELETE as a browser elsewhere would send it (Origin, Sec-Fetch-Site), optionally with a CSRF token. */
function rawRequest(port: number, method: string, path: string, headers: Record<string, string>, body = ''): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function confirmAction(page: Page, scope: string, action: string): Promise<string> {
  await page.locator(`${scope} button[data-action="${action}"]`).first().click();
  await page.locator('#confirm[open]').waitFor();
  await page.locator('#confirm-ok').click();
  await page.locator('#status.ok, #status.error').waitFor();
  const text = await page.locator('#status').textContent() ?? '';
  await page.evaluate(() => { const s = document.getElementById('status'); if (s) { s.textContent = ''; s.className = ''; } });
  return text;
}

/** Runs a search from the page's form; the queue ids listed once the results say they match it. */
async function search(page: Page, q: string, state: string): Promise<string[]> {
  await page.locator('#q').fill(q);
  await page.locator('#state').selectOption(state);
  await page.locator('#search button[type=submit]').click();
  await page.locator('#results p.sub', { hasText: `${q ? ` matching “${q}”` : ''}${state ? ` in state ${state}` : ''}` }).waitFor();
  return (await page.locator('#results tr[data-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id') ?? ''))).sort();
}

describe('the dashboard in chromium', { timeout: 180_000 }, () => {
  let present = false;
  let remote: Remote;
  let h: SpawnedHalcyon;
  let scene: PostmasterScene | undefined;
  let ctx: BrowserContext;
  let page: Page;
  let profile: string;
  const ids: Record<'hostile' | 'later' | 'ok' | 'bad', string> = { hostile: '', later: '', ok: '', bad: '' };
  const pageErrors: string[] = [];
  const cspViolations: string[] = [];
  const consoleErrors: string[] = [];
  let port = 0;
  let base = '';

  before(async () => {
    present = existsSync(CHROMIUM);
    if (!present) return;
    mkdirSync(outDir, { recursive: true });
    scene = await startPostmasterScene({ laterReply: HOSTILE_REPLY, logInfo: true });
    ({ h, remote } = scene);
    port = h.httpPort!;
    base = `http://127.0.0.1:${port}`;
    const inject = async (from: string, to: string, subject: string, msgid: string) => {
      const r = await api(port, 'POST', '/api/messages', { from, to: [to], content: `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${msgid}>\r\n\r\nhello\r\n` });
      assert.equal(r.status, 201, r.text);
      return (r.json as { id: string }).id;
    };
    ids.hostile = await inject(HOSTILE_SENDER, 'x@dead.test', `${SCRIPT} ${IMG}`, 'hostile.1@example.test');
    ids.later = await inject('postmaster@localhost', 'later@sink.test', 'waiting', 'later.2@example.test');
    ids.bad = await inject('postmaster@localhost', 'bad@sink.test', 'refused', 'bad.3@example.test');
    ids.ok = await inject('postmaster@localhost', 'ok@sink.test', 'fine', 'ok.4@example.test');
    // Every first attempt made: two deferred waiting (451, refused connection), one bounced, one sent.
    await until('the first attempts', async () => {
      const list = (await api(port, 'GET', '/api/queue')).json as Entry[];
      const state = (id: string) => list.find((e) => e.message.id === id)?.recipients[0]?.state;
      return state(ids.hostile) === 'deferred' && state(ids.later) === 'deferred' && state(ids.bad) !== 'queued' && state(ids.bad) !== 'inflight'
        && remote.transactions.some((t) => t.rcpts.includes('ok@sink.test'));
    }, 400);
    profile = mkdtempSync(join(tmpdir(), 'halcyon-chromium-'));
    ctx = await launch(profile);
    page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
      if (m.type() === 'error') consoleErrors.push(`${m.text()} ${m.location().url}`);
    });
  });
  after(async () => {
    if (!present) return;
    await ctx?.close();
    await scene?.close();
    rmSync(profile, { recursive: true, force: true });
    rmSync(h.dataDir, { recursive: true, force: true });
  });

  test('chromium is there (or the test says why not)', (t) => {
    haveTool(t, present, `chromium (${CHROMIUM})`);
  });

  test('the page loads under its CSP and shows the queue and the destinations', async (t) => {
    if (!present) return t.skip('chromium not installed');
    const res = await page.goto(`${base}/`);
    assert.equal(res?.status(), 200);
    const csp = res?.headers()['content-security-policy'] ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    await page.locator(`#results tr[data-id="${ids.later}"]`).waitFor();
    // The destination sink.test is listed with its last reply; dead.test in backoff with its probe state.
    await page.locator('#destinations tr[data-destination]').first().waitFor();
    const dests = await page.locator('#destinations').textContent() ?? '';
    assert.match(dests, /backoff/);
    assert.match(dests, /connect failed \(ECONNREFUSED\)/);
    await page.screenshot({ path: join(outDir, 'dashboard-overview.png'), fullPage: true });
    t.diagnostic(`screenshots in ${outDir}`);
  });

  test('recent failures by class, and the suppression list with why and when; remove after a confirmation', async (t) => {
    if (!present) return t.skip('chromium not installed');
    await page.goto(`${base}/`);
    // bad@sink.test got 550 5.1.1: a failure of class InvalidRecipient, and an address on the list.
    await page.locator('#failures tr[data-class="InvalidRecipient"]').first().waitFor();
    const failures = await page.locator('#failures').textContent() ?? '';
    assert.match(failures, /bad@sink\.test/);
    assert.match(failures, /550 5\.1\.1 no such user/);
    await page.locator('#suppressions tr[data-address="bad@sink.test"]').waitFor();
    const listed = await page.locator('#suppressions tr[data-address="bad@sink.test"]').textContent() ?? '';
    assert.match(listed, /InvalidRecipient/);
    assert.match(listed, /bounce/);
    assert.match(listed, /550 5\.1\.1 no such user \(in reply to RCPT TO\)/);
    await page.screenshot({ path: join(outDir, 'dashboard-failures-suppressions.png'), fullPage: true });
    assert.match(await confirmAction(page, '#suppressions', 'unsuppress'), /removed 1 entry for bad@sink\.test/);
    assert.deepEqual((await api(port, 'GET', '/api/suppressions')).json, []);
  });

  test('a search finds a message; its page shows each attempt\'s host, command and reply', async (t) => {
    if (!present) return t.skip('chromium not installed');
    // By Message-ID, by sender and state: only what matches is listed.
    assert.deepEqual(await search(page, 'later.2@example.test', ''), [ids.later]);
    assert.deepEqual(await search(page, 'example.test', 'deferred'), [ids.hostile, ids.later].sort());
    assert.deepEqual(await search(page, 'x@dead.test', ''), [ids.hostile]);
    await page.locator('#q').fill(ids.later);
    await page.locator('#q').press('Enter');
    await page.waitForURL(new RegExp(`#/\\?q=${ids.later}`));
    const row = page.locator(`#results tr[data-id="${ids.later}"]`);
    await row.waitFor();
    await row.locator('a.msgid').click();
    await page.waitForURL(new RegExp(`#/message/${ids.later}$`));
    const attempt = page.locator('[data-recipient="later@sink.test"] tr.attempt').first();
    await attempt.waitFor();
    assert.match(await attempt.locator('td.host').textContent() ?? '', new RegExp(`^127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${remote.port}$`));
    assert.equal(await attempt.locator('td.command').textContent(), 'RCPT TO');
    assert.match(await attempt.locator('td.reply').textContent() ?? '', /said: 451 4\.2\.0 .*greylisted \(in reply to RCPT TO\)/);
    assert.equal(await page.locator('[data-field="message-id"]').textContent(), '<later.2@example.test>');
    await page.screenshot({ path: join(outDir, 'dashboard-message.png'), fullPage: true });
  });

  test('hold and release from the message page, each after a confirmation; cancel changes nothing', async (t) => {
    if (!present) return t.skip('chromium not installed');
    const held = async () => ((await api(port, 'GET', `/api/queue/${ids.later}`)).json as { message: { held: boolean } }).message.held;
    await page.locator('#message-detail button[data-action="hold"]').click();
    await page.locator('#confirm[open]').waitFor();
    assert.match(await page.locator('#confirm-text').textContent() ?? '', new RegExp(`Hold it.*${ids.later}`));
    await page.locator('#confirm-cancel').click();
    assert.equal(await held(), false, 'cancelled: not held');
    assert.match(await confirmAction(page, '#message-detail', 'hold'), new RegExp(`held ${ids.later}`));
    assert.equal(await held(), true);
    // The page follows (refreshed after the action): the hold button became release.
    await page.locator('#message-detail button[data-action="release"]').waitFor();
    assert.match(await confirmAction(page, '#message-detail', 'release'), new RegExp(`released ${ids.later}`));
    assert.equal(await held(), false);
  });

  test('the queue shape and age histogram count held recipients apart; the chart shows the hour\'s counts', async (t) => {
    if (!present) return t.skip('chromium not installed');
    await page.goto(`${base}/#/`);
    const row = page.locator(`#results tr[data-id="${ids.hostile}"]`);
    await row.waitFor();
    // Held from its row in the results, after the confirmation.
    assert.match(await confirmAction(page, `#results tr[data-id="${ids.hostile}"]`, 'hold'), new RegExp(`held ${ids.hostile}`));
    await row.locator('button[data-action="release"]').waitFor();
    assert.deepEqual(await search(page, '', 'held'), [ids.hostile]);
    const shape = (await api(port, 'GET', '/api/queue/shape?by=destination')).json as { total: { total: number }; held: { total: number } };
    assert.deepEqual([shape.total.total, shape.held.total], [1, 1]);
    await page.locator('#shape tr.held-total td.n', { hasText: /^1$/ }).first().waitFor();
    assert.equal(await page.locator('#shape tr.total td').first().textContent(), '1', 'one recipient waiting (later@), held one apart');
    assert.equal(await page.locator('#shape tr.held-total td').first().textContent(), '1');
    assert.equal(await page.locator('#histogram .bucket').first().locator('.count').textContent(), '1 + 1 held', 'both messages are minutes old');
    // The chart: the page's totals are the API's, and they are what happened (one 550, two first-attempt deferrals, the 250s).
    const tp = (await api(port, 'GET', '/api/stats/throughput')).json as { minutes: { sent: number; deferred: number; bounced: number }[] };
    const sum = (k: 'sent' | 'deferred' | 'bounced') => tp.minutes.reduce((n, m) => n + m[k], 0);
    assert.equal(sum('bounced'), 1);
    assert.equal(sum('deferred'), 2);
    assert.ok(sum('sent') >= 1);
    for (const k of ['sent', 'deferred', 'bounced'] as const) {
      await page.locator(`#throughput-totals [data-series="${k}"]`, { hasText: `${k} ${sum(k)}` }).waitFor();
    }
    assert.ok(await page.locator('#throughput .uplot canvas').count() >= 1, 'uPlot drew the chart');
    assert.match(await page.locator('#throughput .u-legend').textContent() ?? '', /sent.*deferred.*bounced/s);
    await page.screenshot({ path: join(outDir, 'dashboard-overview.png'), fullPage: true });
    assert.match(await confirmAction(page, `#results tr[data-id="${ids.hostile}"]`, 'release'), new RegExp(`released ${ids.hostile}`));
    assert.equal(((await api(port, 'GET', `/api/queue/${ids.hostile}`)).json as { message: { held: boolean } }).message.held, false);
    assert.deepEqual(consoleErrors, [], 'no console error (every endpoint answered)');
  });

  test('hostile strings in a subject, a sender and a remote\'s reply are shown as text and never run', async (t) => {
    if (!present) return t.skip('chromium not installed');
    await page.goto(`${base}/#/message/${ids.hostile}`);
    await page.locator('[data-field="subject"]').waitFor();
    assert.equal(await page.locator('[data-field="subject"]').textContent(), `${SCRIPT} ${IMG}`);
    assert.equal(await page.locator('[data-field="sender"]').textContent(), HOSTILE_SENDER);
    await page.goto(`${base}/#/message/${ids.later}`);
    const reply = page.locator('[data-recipient="later@sink.test"] tr.attempt td.reply').first();
    await reply.waitFor();
    assert.ok((await reply.textContent() ?? '').includes(`${SCRIPT} ${IMG} greylisted`));
    await page.goto(`${base}/#/`);
    await page.locator(`#results tr[data-id="${ids.hostile}"]`).waitFor();
    assert.ok(await page.getByText(HOSTILE_SENDER).first().isVisible(), 'the sender is visible as written');
    assert.ok((await page.locator('#destinations').textContent() ?? '').includes(`${SCRIPT} ${IMG} greylisted`), 'the reply among the destination\'s last replies');
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    assert.equal(await page.locator('img').count(), 0, 'no <img> from mail text');
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(cspViolations, []);
  });

  test('a page on another origin cannot act (403, nothing changed); the CLI through the API still can', async (t) => {
    if (!present) return t.skip('chromium not installed');
    const evil = http.createServer((_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<!doctype html><title>elsewhere</title>'); });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
    const evilPort = (evil.address() as import('node:net').AddressInfo).port;
    try {
      await page.goto(`http://localhost:${evilPort}/`);
      // A cross-site fetch (no-cors: the browser sends it without asking) and a cross-site form (text/plain "JSON").
      const hold = page.waitForResponse((r) => r.url().endsWith(`/api/queue/${ids.later}/hold`));
      await page.evaluate((u) => { void fetch(u, { method: 'POST', mode: 'no-cors', credentials: 'include' }); }, `${base}/api/queue/${ids.later}/hold`);
      assert.equal((await hold).status(), 403);
      const del = page.waitForResponse((r) => r.url().endsWith('/api/queue/delete'));
      await page.evaluate(([u, id]) => {
        const f = document.createElement('form');
        f.method = 'POST'; f.action = u!; f.enctype = 'text/plain';
        const i = document.createElement('input');
        i.name = `{"ids":["${id}"],"x":"`; i.value = '"}';
        f.append(i); document.body.append(f); f.submit();
      }, [`${base}/api/queue/delete`, ids.later]);
      assert.equal((await del).status(), 403);
    } finally {
      await new Promise<void>((r) => { evil.close(() => r()); evil.closeAllConnections(); });
    }
    const entry = () => ((api(port, 'GET', '/api/queue').then((r) => (r.json as Entry[]).find((e) => e.message.id === ids.later))));
    assert.equal((await entry())?.message.held, false, 'still there and not held');
    // The same from anywhere else, spelled out: another origin, or the right origin without the page's token.
    const elsewhere: Record<string, string>[] = [{ origin: 'http://evil.example' }, { 'sec-fetch-site': 'cross-site' }, { origin: base, 'sec-fetch-site': 'same-origin' }, { referer: `${base}/` }];
    for (const headers of elsewhere) {
      const r = await rawRequest(port, 'POST', `/api/queue/${ids.later}/hold`, headers);
      assert.equal(r.status, 403, JSON.stringify(headers));
    }
    assert.equal((await entry())?.message.held, false);
    // The CLI is no browser: its HTTP backend holds and releases as before.
    for (const verb of ['hold', 'release']) {
      const r = await runCli(['queue', verb, ids.later, '--json', '--config', h.configFile]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual((JSON.parse(r.stdout) as { ids: string[] }).ids, [ids.later]);
      assert.equal((await entry())?.message.held, verb === 'hold');
    }
  });

  test('it refreshes itself without losing what the user was typing', async (t) => {
    if (!present) return t.skip('chromium not installed');
    await page.goto(`${base}/#/`);
    await page.locator('#results tr[data-id]').first().waitFor();
    await page.locator('#q').fill('half-typed');
    const before = await page.locator('#updated').textContent();
    await page.locator('#updated').filter({ hasNotText: before ?? '' }).waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('#q').inputValue(), 'half-typed');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'q', 'the search box keeps the focus');
  });

  test('flush, bounce and delete from the page, each after a confirmation', async (t) => {
    if (!present) return t.skip('chromium not installed');
    // Flush: its destination is in backoff, and the page says so rather than claiming a retry.
    await page.goto(`${base}/#/message/${ids.hostile}`);
    await page.locator('#message-detail button[data-action="flush"]').waitFor();
    assert.match(await confirmAction(page, '#message-detail', 'flush'), new RegExp(`flushed ${ids.hostile}: 0 recipient\\(s\\) due now; 1 wait for route:127\\.0\\.0\\.1:\\d+ \\(backoff\\)`));
    await page.goto(`${base}/#/message/${ids.later}`);
    await page.locator('#message-detail button[data-action="bounce"]').waitFor();
    assert.match(await confirmAction(page, '#message-detail', 'bounce'), new RegExp(`bounced ${ids.later}: 1 recipient`));
    await until('the bounce recorded', async () => {
      const r = await api(port, 'GET', `/api/queue/${ids.later}`);
      return r.status === 404 || (r.json as { recipients: { state: string }[] }).recipients[0]?.state === 'failed';
    });
    await page.goto(`${base}/#/message/${ids.hostile}`);
    await page.locator('#message-detail button[data-action="delete"]').waitFor();
    assert.match(await confirmAction(page, '#message-detail', 'delete'), new RegExp(`deleted ${ids.hostile}: 1 message`));
    assert.equal((await api(port, 'GET', `/api/queue/${ids.hostile}`)).status, 404);
    await page.locator('#message-detail', { hasText: `Message ${ids.hostile} is no longer in the queue.` }).waitFor();
  });
});

describe('the dashboard where the token is required', { timeout: 120_000 }, () => {
  test('the browser gives the token through Basic auth; its actions work; the CLI uses its bearer token', async (t) => {
    if (!haveTool(t, existsSync(CHROMIUM), `chromium (${CHROMIUM})`)) return;
    const h = await spawnHalcyon('[http]\nrequire_token = true\ntoken = "s3cret-token"\n[routes]\n"dead.test" = "127.0.0.1:9"\n[delivery]\nretry_initial = "1h"\n', { http: true });
    const profile = mkdtempSync(join(tmpdir(), 'halcyon-chromium-'));
    let ctx: BrowserContext | undefined;
    try {
      const port = h.httpPort!;
      const unauth = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(unauth.status, 401);
      assert.match(unauth.headers.get('www-authenticate') ?? '', /Basic realm="halcyon"/);
      const sent = await runCli(['sendmail', '-C', h.configFile, '-f', 'postmaster@localhost', 'x@dead.test'], { input: 'Subject: behind a token\n\nx\n' });
      assert.equal(sent.code, 0, sent.stderr);
      const list = JSON.parse((await runCli(['queue', 'list', '--json', '--config', h.configFile])).stdout) as Entry[];
      const id = list[0]!.message.id;
      ctx = await launch(profile, { httpCredentials: { username: 'admin', password: 's3cret-token' } });
      const page = await ctx.newPage();
      await page.goto(`http://127.0.0.1:${port}/#/message/${id}`);
      await page.locator('#message-detail button[data-action="hold"]').waitFor();
      assert.match(await confirmAction(page, '#message-detail', 'hold'), new RegExp(`held ${id}`));
      const shown = await api(port, 'GET', `/api/queue/${id}`, undefined, 's3cret-token');
      assert.equal((shown.json as { message: { held: boolean } }).message.held, true);
      const release = await runCli(['queue', 'release', id, '--json', '--config', h.configFile]);
      assert.equal(release.code, 0, release.stderr);
      assert.equal(((await api(port, 'GET', `/api/queue/${id}`, undefined, 's3cret-token')).json as { message: { held: boolean } }).message.held, false);
    } finally {
      await ctx?.close();
      await h.kill('SIGTERM');
      rmSync(profile, { recursive: true, force: true });
      rmSync(h.dataDir, { recursive: true, force: true });
    }
  });
});
