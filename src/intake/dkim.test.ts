import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError } from '../config/load.js';
import { authorDomain, dkimSignature, keyFor, signedHeaders, type DkimKey } from './dkim.js';
import { loadDkimKeys } from './dkim-keys.js';

const ed = generateKeyPairSync('ed25519').privateKey;
const key = (domain: string, selector = 's'): DkimKey => ({ domain, selector, algorithm: 'ed25519-sha256', privateKey: ed, headers: signedHeaders(undefined) });

describe('authorDomain', () => {
  const cases: [string, string | undefined][] = [
    ['From: a@Example.TEST\r\n', 'example.test'],
    ['From: "Doe, John" <j@mail.example.test>\r\n', 'mail.example.test'],
    ['Subject: x\r\nfrom:\r\n\tJane (work, @x.test) <jane@b.test>, other@c.test\r\n', 'b.test'],
    ['From: "a@evil.test" <a@good.test>\r\n', 'good.test'],
    ['From: undisclosed\r\n', undefined],
    ['Sender: a@x.test\r\n', undefined],
  ];
  for (const [headers, want] of cases) test(JSON.stringify(headers), () => assert.equal(authorDomain(headers), want));
});

describe('keyFor', () => {
  const keys = [key('example.test', 'parent'), key('news.example.test', 'child')];
  test('own domain, else the nearest parent; never a sibling or a look-alike', () => {
    assert.equal(keyFor('example.test', keys)?.selector, 'parent');
    assert.equal(keyFor('a.b.example.test', keys)?.selector, 'parent');
    assert.equal(keyFor('x.news.example.test', keys)?.selector, 'child');
    assert.equal(keyFor('badexample.test', keys), undefined);
    assert.equal(keyFor('example.test.evil', keys), undefined);
    assert.equal(keyFor(undefined, keys), undefined);
  });
});

describe('dkimSignature', () => {
  const msg = Buffer.from('From: a@example.test\r\nTo: b@x.test\r\nSubject: s\r\nX-Other: o\r\n\r\nbody\r\n');
  test('h= lists the present signed fields and From/Subject/To once more (oversigned); t= is the time given', () => {
    const sig = dkimSignature(msg, key('example.test'), Date.UTC(2026, 0, 1) ).replace(/\r\n[ \t]/g, ' ');
    const h = /h=([^;]*)/.exec(sig)?.[1]?.split(':').map((s) => s.trim().toLowerCase());
    assert.deepEqual(h?.slice().sort(), ['from', 'from', 'subject', 'subject', 'to', 'to']);
    assert.match(sig, /^DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed\/relaxed; d=example\.test;/);
    assert.match(sig, / t=1767225600;/);
    assert.ok(sig.endsWith('\r\n'));
  });
  test('headers configured without From still sign From', () => {
    assert.deepEqual(signedHeaders(['Subject', 'subject', ' To ']), ['From', 'Subject', 'To']);
  });
});

describe('loadDkimKeys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-dkim-unit-'));
  const edFile = join(dir, 'ed.pem');
  writeFileSync(edFile, ed.export({ type: 'pkcs8', format: 'pem' }));
  test('a missing file and a key of the wrong type are configuration errors naming the entry', () => {
    try {
      loadDkimKeys([
        { domain: 'a.test', selector: 's', key: join(dir, 'missing.pem'), algorithm: 'rsa-sha256' },
        { domain: 'b.test', selector: 's', key: edFile, algorithm: 'rsa-sha256' },
        { domain: 'c.test', selector: 's', key: edFile, algorithm: 'ed25519-sha256' },
      ]);
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems.map((p) => p.path), ['dkim.0.key', 'dkim.1.key']);
      assert.match(err.problems[1]!.message, /ed25519 key, but algorithm is rsa-sha256/);
    }
  });
});
