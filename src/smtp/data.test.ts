import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DataReader, scanChunk } from './data.js';
import { dotStuff, dotStuffParts } from './dotstuff.js';

const read = (input: string, max = 1 << 20) => new DataReader(max).push(Buffer.from(input, 'latin1'));

describe('DataReader', () => {
  test('CRLF.CRLF ends the content and the rest is returned', () => {
    const r = read('Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n');
    assert.ok(r);
    assert.equal(r.result.content.toString(), 'Subject: x\r\n\r\nhello\r\n');
    assert.equal(r.rest.toString(), 'QUIT\r\n');
  });

  test('an empty message is just the terminator', () => {
    const r = read('.\r\n');
    assert.equal(r?.result.content.length, 0);
  });

  test('dot-unstuffing at line starts only', () => {
    const r = read('..leading\r\nmid.dle\r\n...\r\n.\r\n');
    assert.equal(r?.result.content.toString(), '.leading\r\nmid.dle\r\n..\r\n');
  });

  test('the end may be split across chunks at any byte', () => {
    const text = 'a\r\nb\r\n.\r\nNOOP\r\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const reader = new DataReader(1000);
      const first = reader.push(Buffer.from(text.slice(0, cut)));
      const r = first ?? reader.push(Buffer.from(text.slice(cut)));
      assert.ok(r, `cut at ${cut}`);
      assert.equal(r.result.content.toString(), 'a\r\nb\r\n');
      assert.equal((first ? Buffer.concat([r.rest, Buffer.from(text.slice(cut))]) : r.rest).toString(), 'NOOP\r\n');
    }
  });

  // The eleven end-of-data look-alikes of the SMTP smuggling family: none of
  // them ends the content; each yields at most one message, and after
  // normalization no bare CR or LF remains in what is stored.
  const smuggling: [string, string][] = [
    ['\\n.\\n', '\n.\n'], ['\\n.\\r', '\n.\r'], ['\\r.\\n', '\r.\n'], ['\\r.\\r', '\r.\r'],
    ['\\n.\\r\\n', '\n.\r\n'], ['\\r.\\r\\n', '\r.\r\n'], ['\\r\\n\\x00.\\r\\n', '\r\n\x00.\r\n'],
    ['\\r\\n.\\r\\r\\n', '\r\n.\r\r\n'], ['\\r\\r\\n.\\r\\r\\n', '\r\r\n.\r\r\n'], ['\\r\\n.\\n', '\r\n.\n'], ['\\r\\n.\\r', '\r\n.\r'],
  ];
  for (const [name, seq] of smuggling) {
    test(`smuggling: ${name} does not end DATA`, () => {
      const reader = new DataReader(1 << 20);
      const payload = `Subject: first\r\n\r\nbody${seq}MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nsmuggled\r\n`;
      assert.equal(reader.push(Buffer.from(payload, 'latin1')), undefined, 'the look-alike must not end the content');
      const r = reader.push(Buffer.from('\r\n.\r\n'));
      assert.ok(r, 'the real terminator ends it');
      const stored = r.result.content.toString('latin1');
      assert.ok(stored.includes('MAIL FROM:<evil@x>'), 'the smuggled commands stay inside the one message');
      assert.doesNotMatch(stored.replace(/\r\n/g, ''), /[\r\n]/, 'no bare CR or LF is stored');
      const f = r.result.flags;
      assert.ok(f.bareCr || f.bareLf || f.nul, 'the anomaly is reported so the session can reject it');
    });
  }

  test('NUL, long lines and size cap are reported', () => {
    const reader = new DataReader(10);
    const r = reader.push(Buffer.from(`${'x'.repeat(1200)}\r\n\x00\r\n.\r\n`, 'latin1'));
    assert.ok(r);
    assert.equal(r.result.flags.tooBig, true);
    assert.equal(r.result.flags.longLine, true);
    assert.equal(r.result.flags.nul, true);
    assert.equal(r.result.content.length, 0);
  });
});

describe('dotStuff', () => {
  test('stuffs leading dots, normalizes line ends, terminates', () => {
    assert.equal(dotStuff(Buffer.from('.a\r\nb\nc\r.\r\n')).toString(), '..a\r\nb\r\nc\r\n..\r\n.\r\n');
    assert.equal(dotStuff(Buffer.from('no newline')).toString(), 'no newline\r\n.\r\n');
    assert.equal(dotStuff(Buffer.alloc(0)).toString(), '.\r\n');
  });

  test('a clean body goes out as itself plus the dot, not copied', () => {
    const body = Buffer.from('Subject: x\r\n\r\nline\r\nmid.dle\r\n');
    const parts = dotStuffParts(body);
    assert.equal(parts.length, 2);
    assert.equal(parts[0]!.buffer, body.buffer, 'the body itself, not a copy');
    assert.equal(parts[1]!.toString(), '.\r\n');
    assert.equal(Buffer.concat(dotStuffParts(Buffer.from('x'))).toString(), 'x\r\n.\r\n');
  });

  test('round trip through DataReader gives the content back', () => {
    const content = '.x\r\n..y\r\n\r\n.\r\nz\r\n';
    const r = new DataReader(1000).push(dotStuff(Buffer.from(content)));
    assert.equal(r?.result.content.toString(), content);
  });
});

describe('scanChunk (BDAT)', () => {
  test('a CRLF split across chunks is not a bare CR', () => {
    const flags = { bareLf: false, bareCr: false, nul: false, longLine: false, tooBig: false };
    const a = scanChunk(Buffer.from('line\r'), flags, false);
    const b = scanChunk(Buffer.from('\nnext\n'), flags, a.endsInCr);
    assert.equal(Buffer.concat([a.normalized, b.normalized]).toString(), 'line\r\nnext\r\n');
    assert.equal(flags.bareCr, false);
    assert.equal(flags.bareLf, true);
  });
});

describe('DataReader and dotStuff agree (property)', () => {
  test('any content, cut anywhere: what dotStuff sends, DataReader gives back with CRLF line ends', async () => {
    const fc = (await import('fast-check')).default;
    const alphabet = fc.constantFrom('a', 'b', '.', '\r', '\n', '\r\n', '\x00', 'é', 'xxxxxxxxxx');
    const normalize = (s: string): string => {
      const lines = s.replace(/\r\n|\r|\n/g, '\n');
      const withEnd = lines === '' || lines.endsWith('\n') ? lines : `${lines}\n`;
      return withEnd.replace(/\n/g, '\r\n');
    };
    fc.assert(fc.property(fc.array(alphabet, { maxLength: 60 }), fc.array(fc.nat(80), { maxLength: 4 }), (parts, cuts) => {
      const content = Buffer.from(parts.join(''), 'utf8');
      const wire = dotStuff(content);
      const reader = new DataReader(1 << 20);
      const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
      let prev = 0;
      let done: ReturnType<DataReader['push']>;
      for (const p of [...points, wire.length]) {
        done = reader.push(wire.subarray(prev, p));
        prev = p;
        if (done) break;
      }
      assert.ok(done!, 'the terminator was found');
      assert.equal(done!.result.content.toString('utf8'), normalize(content.toString('utf8')));
      assert.equal(done!.result.flags.bareCr || done!.result.flags.bareLf, false, 'dotStuff never sends a bare CR or LF');
    }), { numRuns: 2000 });
  });
});
