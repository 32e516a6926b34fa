/** local/aliases-file: the /etc/aliases format, what is refused, and includes (read from a map, no disk). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblem, MAX_INCLUDE_DEPTH, parseAliases } from './aliases-file.js';

const files = (map: Record<string, string>) => (p: string): string => {
  const text = map[p];
  if (text === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
  return text;
};
const entries = (t: ReturnType<typeof parseAliases>) => Object.fromEntries(t.aliases);

test('name: target, target; comments, blank lines and continuation lines (one that starts with a blank)', () => {
  const t = parseAliases([
    '# the postmaster',
    'Postmaster: root',
    '',
    'team:  alice, bob,',
    '   # a comment inside the entry is skipped',
    '\tcarol@Elsewhere.example',
    '"Quoted": <bob>, "john smith"@lists.example',
    'root: admin@example.org, admin@example.org',
  ].join('\n'), '/etc/halcyon/aliases');
  assert.deepEqual(entries(t), {
    postmaster: ['root'],
    team: ['alice', 'bob', 'carol@Elsewhere.example'],
    quoted: ['bob', '"john smith"@lists.example'],
    root: ['admin@example.org'],
  });
  assert.deepEqual(t.problems, []);
  assert.deepEqual(t.files, ['/etc/halcyon/aliases']);
});

test('no delivery to a command or a file: the target is refused with its line; an alias left with none stays (its mail is refused)', () => {
  const t = parseAliases([
    'bob: bob, "|/usr/bin/procmail -a x, y"',
    'archive: /var/mail/archive',
    'cmd: |/bin/cat',
    'ok: alice',
  ].join('\n'), '/etc/aliases');
  assert.deepEqual(entries(t), { bob: ['bob'], archive: [], cmd: [], ok: ['alice'] });
  assert.deepEqual(t.problems.map(formatProblem), [
    '/etc/aliases:1: "|/usr/bin/procmail -a x, y": delivery to a command is not supported: target refused',
    '/etc/aliases:2: "/var/mail/archive": delivery to a file is not supported: target refused',
    '/etc/aliases:3: "|/bin/cat": delivery to a command is not supported: target refused',
  ]);
});

test('bad lines, names with @, duplicates (the first is kept) and empty entries are problems; the rest loads', () => {
  const t = parseAliases(['no colon here', 'a@b.example: x', 'dup: one', 'dup: two', 'empty:', 'weird: a b'].join('\n'), '/a');
  assert.deepEqual(entries(t), { dup: ['one'], empty: [], weird: [] });
  assert.deepEqual(t.problems.map((p) => [p.line, p.message]), [
    [1, '"no colon here": expected "name: target, target": entry refused'],
    [2, '"a@b.example": an alias name is a local part (no "@" or blanks; the file applies to every local domain): entry refused'],
    [4, '"dup": duplicate entry: the first (line 3) is kept'],
    [5, '"empty": no target: its mail is refused'],
    [6, '"a b": not an address or local user: target refused'],
  ]);
});

test(':include: takes the addresses of another file (relative to the aliases file), nested; loops, depth and missing files refused', () => {
  const read = files({
    '/etc/halcyon/staff.txt': '# staff\nalice, bob\ncarol@x.example\n:include:more.txt\n|/bin/sh\n',
    '/etc/halcyon/more.txt': 'dave\n',
    '/etc/halcyon/loop.txt': ':include:/etc/halcyon/loop.txt\nerin\n',
  });
  const t = parseAliases('staff: :include:staff.txt\nloop: :INCLUDE: /etc/halcyon/loop.txt\ngone: :include:/nowhere.txt, frank', '/etc/halcyon/aliases', read);
  assert.deepEqual(entries(t), { staff: ['alice', 'bob', 'carol@x.example', 'dave'], loop: ['erin'], gone: ['frank'] });
  assert.deepEqual(t.problems.map(formatProblem), [
    '/etc/halcyon/staff.txt:5: "|/bin/sh": delivery to a command is not supported: target refused',
    '/etc/halcyon/loop.txt:1: :include:/etc/halcyon/loop.txt includes itself (through /etc/halcyon/aliases → /etc/halcyon/loop.txt): refused',
    '/etc/halcyon/aliases:3: :include:/nowhere.txt: cannot be read (ENOENT): its addresses are left out',
  ]);
  // Every file tried is watched, the missing one too (creating it is a change).
  assert.deepEqual(t.files, ['/etc/halcyon/aliases', '/etc/halcyon/staff.txt', '/etc/halcyon/more.txt', '/etc/halcyon/loop.txt', '/nowhere.txt']);

  // A chain of includes deeper than MAX_INCLUDE_DEPTH stops there.
  const chain: Record<string, string> = {};
  for (let i = 0; i < MAX_INCLUDE_DEPTH + 3; i++) chain[`/c${i}`] = `u${i}, :include:/c${i + 1}`;
  const deep = parseAliases('deep: :include:/c0', '/a', files(chain));
  assert.equal(deep.aliases.get('deep')!.length, MAX_INCLUDE_DEPTH);
  assert.match(formatProblem(deep.problems[0]!), /includes nest deeper than 5: refused/);
});
