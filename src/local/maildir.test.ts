/**
 * Unit tests for local/maildir: Maildir delivery on a real file system (in a
 * temporary directory), usage and quota accounting, and the local recipient
 * table (mailboxes, aliases, catch-all, loops).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema } from '../config/schema.js';
import { Maildir, Mailboxes } from './maildir.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'halcyon-maildir-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const NAME = /^\d+\.M\d+P\d+Q\d+\.[^/:,]+,S=(\d+)$/;

describe('Maildir.deliver', () => {
  test('writes exactly one file in new/ with the headers and the exact body; tmp/ is left empty', async () => {
    const root = join(await tempDir(), 'box');
    const md = new Maildir(root, { hostname: 'mx.example.test' });
    const body = Buffer.from('Subject: hi\r\n\r\nhello\r\n.leading dot\r\n\u00e9\r\n', 'utf8');
    const r = await md.deliver(body, { deliveredTo: 'bob@example.test', returnPath: 'alice@remote.test' });

    const news = await readdir(join(root, 'new'));
    assert.equal(news.length, 1);
    assert.deepEqual(await readdir(join(root, 'tmp')), []);
    assert.deepEqual(await readdir(join(root, 'cur')), []);
    assert.equal(r.path, join(root, 'new', news[0]!));
    const content = await readFile(r.path);
    assert.deepEqual(content, Buffer.concat([
      Buffer.from('Return-Path: <alice@remote.test>\r\nDelivered-To: bob@example.test\r\n'), body,
    ]));
    assert.equal(r.size, content.length);
    const m = NAME.exec(news[0]!);
    assert.ok(m, `maildir name: ${news[0]}`);
    assert.equal(Number(m[1]), content.length);
  });

  test('null sender becomes <>, and header values cannot smuggle a header line', async () => {
    const md = new Maildir(join(await tempDir(), 'box'));
    const r = await md.deliver(Buffer.from('\r\nx\r\n'), { returnPath: '', deliveredTo: 'bob@example.test\r\nX-Evil: 1' });
    const text = (await readFile(r.path)).toString();
    assert.ok(text.startsWith('Return-Path: <>\r\nDelivered-To: bob@example.test X-Evil: 1\r\n'), text);
    assert.doesNotMatch(text, /\r\nX-Evil/);
  });

  test('100 concurrent deliveries give 100 distinct files, each with its own content', async () => {
    const root = join(await tempDir(), 'box');
    const md = new Maildir(root);
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => md.deliver(Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`))));
    const news = await readdir(join(root, 'new'));
    assert.equal(news.length, 100);
    assert.equal(new Set(results.map((r) => r.path)).size, 100);
    assert.deepEqual(await readdir(join(root, 'tmp')), []);
    for (let i = 0; i < 100; i++) assert.equal((await readFile(results[i]!.path)).toString(), `Subject: ${i}\r\n\r\nbody ${i}\r\n`);
  });

  test('a failed rename leaves nothing behind in tmp/ and the error reaches the caller', async () => {
    const root = join(await tempDir(), 'box');
    const md = new Maildir(root);
    await md.deliver(Buffer.from('first\r\n'));
    await rm(join(root, 'new'), { recursive: true });
    await writeFile(join(root, 'new'), 'not a directory');
    await assert.rejects(md.deliver(Buffer.from('second\r\n')));
    assert.deepEqual(await readdir(join(root, 'tmp')), []);
  });

  test('path segments that could leave data_dir are refused', () => {
    assert.throws(() => Maildir.forMailbox('/data', 'example.test', '..'), RangeError);
    assert.throws(() => Maildir.forMailbox('/data', '../etc', 'bob'), RangeError);
    assert.equal(Maildir.forMailbox('/data', 'Example.TEST', 'Bob').root, join('/data', 'mailboxes', 'example.test', 'bob'));
  });
});

describe('Maildir usage', () => {
  test('counts new/ and cur/ from ,S= names, stat otherwise, and the cache follows deliveries', async () => {
    const root = join(await tempDir(), 'box');
    const md = new Maildir(root);
    assert.equal(await md.usage(), 0, 'a mailbox never delivered to is empty');
    const a = await md.deliver(Buffer.alloc(1000, 0x61));
    await mkdir(join(root, 'cur'), { recursive: true });
    await writeFile(join(root, 'cur', '1700000000.M1P1Q1.h,S=250:2,S'), Buffer.alloc(7)); // the name's size wins
    await writeFile(join(root, 'cur', '1700000000.M2P1Q2.h:2,'), Buffer.alloc(123)); // no size: stat
    assert.equal(await md.usage(), a.size + 250 + 123);
    const b = await md.deliver(Buffer.alloc(500, 0x62));
    assert.equal(md.usageCached(), a.size + 250 + 123 + b.size);
    assert.equal((await stat(b.path)).size, b.size);
  });
});

function mailboxes(dataDir: string): Mailboxes {
  const cfg = configSchema.parse({
    data_dir: dataDir,
    domains: [
      {
        name: 'Example.Test',
        mailboxes: [{ user: 'Bob', quota: '1000' }, { user: 'alice', quota: 0 }, { user: 'carol', quota: '1k' }, { user: 'catch' }],
        aliases: {
          team: ['bob', 'Carol@example.test', 'dave@remote.test', 'sales'],
          sales: ['alice', 'team'],
          ping: ['pong'], pong: ['ping'],
          copy: ['copy', 'bob'],
          keep: ['carol', 'carol@elsewhere.test'], carol: ['carol', 'carol@elsewhere.test'],
          ghost: ['nobody'],
          ...Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`d${i}`, [`d${i + 1}`]])),
          d12: ['alice'],
        },
      },
      { name: 'other.test', mailboxes: [{ user: 'x' }], catch_all: 'catch2', aliases: { catch2: ['x', 'ext@remote.test'] } },
      { name: 'solo.test', mailboxes: [{ user: 'catch' }], catch_all: 'catch' },
    ],
  });
  return new Mailboxes(cfg.domains, cfg.data_dir);
}

describe('Mailboxes', () => {
  test('lookup: mailbox, alias, unknown and not-local; domain and local part case-insensitive', async () => {
    const mb = mailboxes(await tempDir());
    assert.deepEqual(mb.lookup('BOB@example.TEST'), { kind: 'mailbox', domain: 'example.test', user: 'bob', quota: 1000 });
    assert.deepEqual(mb.lookup('alice@example.test.'), { kind: 'mailbox', domain: 'example.test', user: 'alice', quota: 0 });
    assert.deepEqual(mb.lookup('Ghost@example.test'), { kind: 'alias', targets: ['nobody@example.test'] });
    assert.deepEqual(mb.lookup('nobody@example.test'), { kind: 'unknown' });
    assert.deepEqual(mb.lookup('bob@remote.test'), { kind: 'not-local' });
    assert.deepEqual(mb.lookup('no-at-sign'), { kind: 'not-local' });
    assert.equal(mb.isLocalDomain('EXAMPLE.test'), true);
    assert.equal(mb.isLocalDomain('remote.test'), false);
  });

  test('catch_all takes unknown local parts, following an alias when it names one', async () => {
    const mb = mailboxes(await tempDir());
    assert.deepEqual(mb.lookup('anything@solo.test'), { kind: 'mailbox', domain: 'solo.test', user: 'catch', quota: 0 });
    assert.deepEqual(mb.expand('whoever@other.test'), {
      mailboxes: [{ kind: 'mailbox', domain: 'other.test', user: 'x', quota: 0 }], remote: ['ext@remote.test'], unknown: [], loops: [],
    });
  });

  test('alias expansion reaches local mailboxes and remote addresses; a cycle expands once and stops', async () => {
    const mb = mailboxes(await tempDir());
    const x = mb.expand('team@example.test');
    assert.deepEqual(x.mailboxes.map((b) => `${b.user}@${b.domain}`).sort(), ['alice@example.test', 'bob@example.test', 'carol@example.test']);
    assert.deepEqual([...x.remote].sort(), ['carol@elsewhere.test', 'dave@remote.test']);
    assert.deepEqual(x.unknown, []);
    assert.ok(x.loops.some((a) => a.toLowerCase() === 'team@example.test'), `loops: ${x.loops.join(',')}`);
  });

  test('a pure alias loop delivers nowhere and is reported; depth beyond 10 is cut', async () => {
    const mb = mailboxes(await tempDir());
    const loop = mb.expand('ping@example.test');
    assert.deepEqual([loop.mailboxes, loop.remote], [[], []]);
    assert.ok(loop.loops.length > 0);
    const deep = mb.expand('d0@example.test');
    assert.deepEqual(deep.mailboxes, []);
    assert.ok(deep.loops.length > 0, 'a 13-level chain exceeds the depth limit');
    const shallow = mb.expand('d5@example.test'); // 8 levels: within the limit
    assert.deepEqual(shallow.mailboxes.map((b) => b.user), ['alice']);
  });

  test('an alias naming itself with a mailbox keeps a copy there; an unknown target is reported', async () => {
    const mb = mailboxes(await tempDir());
    const keep = mb.expand('carol@example.test');
    assert.deepEqual(keep.mailboxes.map((b) => b.user), ['carol']);
    assert.deepEqual(keep.remote, ['carol@elsewhere.test']);
    const copy = mb.expand('copy@example.test'); // "copy" has no mailbox: that self-reference is a loop
    assert.deepEqual(copy.mailboxes.map((b) => b.user), ['bob']);
    assert.deepEqual(copy.loops, ['copy@example.test']);
    assert.deepEqual(mb.expand('ghost@example.test').unknown, ['nobody@example.test']);
    assert.deepEqual(mb.expand('nobody@example.test'), { mailboxes: [], remote: [], unknown: ['nobody@example.test'], loops: [] });
  });

  test('checkQuota: full when usage ≥ quota or usage + SIZE > quota; quota 0 is unlimited', async () => {
    const dataDir = await tempDir();
    const mb = mailboxes(dataDir);
    await mb.refreshUsage();
    assert.equal(mb.checkQuota('bob@example.test', 1000), 'ok', 'exactly the quota fits');
    assert.equal(mb.checkQuota('bob@example.test', 1001), 'full');
    const first = await mb.maildir('example.test', 'bob').deliver(Buffer.alloc(600), { deliveredTo: 'bob@example.test' });
    assert.equal(mb.checkQuota('bob@example.test', 0), 'ok');
    assert.equal(mb.checkQuota('bob@example.test', 1000 - first.size), 'ok');
    assert.equal(mb.checkQuota('Bob@Example.test', 1001 - first.size), 'full');
    await mb.maildir('example.test', 'bob').deliver(Buffer.alloc(1000 - first.size));
    assert.equal(mb.checkQuota('bob@example.test', 0), 'full', 'usage == quota is full');
    // The mailbox on disk is where the figure comes from, not only the cache.
    const fresh = mailboxes(dataDir);
    await fresh.refreshUsage();
    assert.equal(fresh.checkQuota('bob@example.test', 0), 'full');
    await mb.maildir('example.test', 'alice').deliver(Buffer.alloc(5000));
    assert.equal(mb.checkQuota('alice@example.test', 10 ** 9), 'ok', 'quota 0 = unlimited');
  });

  test('checkQuota through aliases: full only when every local target is full and none is remote', async () => {
    const mb = mailboxes(await tempDir());
    await mb.refreshUsage();
    await mb.maildir('example.test', 'bob').deliver(Buffer.alloc(2000));
    assert.equal(mb.checkQuota('d12@example.test', 0), 'ok', 'd12 → alice (unlimited)');
    assert.equal(mb.checkQuota('copy@example.test', 0), 'full', 'copy → bob only, and bob is full');
    assert.equal(mb.checkQuota('team@example.test', 0), 'ok', 'team has other and remote targets');
    assert.equal(mb.checkQuota('nobody@example.test', 10 ** 9), 'ok', 'unknown users are not a quota matter');
  });
});
