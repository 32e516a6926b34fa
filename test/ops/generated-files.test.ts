/**
 * test/ops/generated-files — the files made from the code are current and
 * work: man/halcyon.8 (commander definitions + config schema) renders with
 * `man -l` and has no roff input errors; completions/halcyon.bash completes
 * commands, options and option values when bash runs it the way a shell's
 * completion does (COMP_WORDS/COMP_CWORD, then _halcyon); completions/_halcyon
 * computes the same for zsh; `halcyon completion bash|zsh` prints the files.
 * A stale file fails with the command that regenerates it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from '../../src/cli/generated.js';
import { haveTool, runCli } from '../support/halcyon.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

describe('generated files: man page and shell completions', () => {
  test('every generated file on disk is what the code makes now', () => {
    for (const [path, text] of Object.entries(generatedFiles())) {
      assert.equal(readFileSync(join(REPO, path), 'utf8'), text, `${path} is stale: run npm run gen-docs`);
    }
  });

  test('man -l renders halcyon(8): commands, options and settings, and groff finds no bad input', (t) => {
    if (!haveTool(t, has('man') && has('groff'), 'man and groff')) return;
    const page = join(REPO, 'man/halcyon.8');
    const out = execFileSync('man', ['-l', page], { env: { ...process.env, MANWIDTH: '100', MANPAGER: 'cat', PAGER: 'cat', LC_ALL: 'C.UTF-8' }, encoding: 'utf8' });
    assert.match(out, /^HALCYON\(8\) +System Manager's Manual +HALCYON\(8\)$/m);
    assert.match(out, /^ +halcyon queue shape$/m);
    assert.match(out, /^ +--by <key>$/m);
    assert.match(out, /^ +halcyon newaliases$/m);
    assert.match(out, /^ +aliases\.file$/m);
    assert.match(out, /^ +smtp\.max_message_size$/m);
    assert.match(out, /→/, 'non-ASCII text reaches the reader');
    const groff = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', page], { encoding: 'utf8' });
    assert.equal(groff.status, 0);
    assert.deepEqual(groff.stderr.split('\n').filter((l) => l && !/cannot adjust line/.test(l)), []);
  });

  test('bash completion: commands, subcommands, options and option values', (t) => {
    if (!haveTool(t, has('bash'), 'bash')) return;
    const complete = (...words: string[]) => execFileSync('bash', ['-c',
      `source completions/halcyon.bash; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _halcyon; echo "\${COMPREPLY[*]}"`],
    { cwd: REPO, encoding: 'utf8' }).trim();
    assert.equal(complete('halcyon', 'qu'), 'queue');
    assert.equal(complete('halcyon', 'queue', ''), 'check salvage migrate list show flush hold release delete bounce shape cat');
    assert.equal(complete('halcyon', 'queue', 'shape', '--by', ''), 'domain destination sender-domain');
    // An option value between the words does not lose the command: --st after `list --domain x.test`.
    assert.equal(complete('halcyon', 'queue', 'list', '--domain', 'x.test', '--st'), '--state');
    assert.equal(complete('halcyon', 'queue', 'list', '--state', 'def'), 'deferred');
    assert.equal(complete('halcyon', 'newal'), 'newaliases');
    assert.equal(complete('halcyon', 'config', 'show', '--ch'), '--changed');
    // -c takes a file: bash completes file names there.
    assert.match(complete('halcyon', 'serve', '-c', 'package.js'), /^package\.json$/);
  });

  test('zsh completion: the same candidates, and the file parses', (t) => {
    if (!haveTool(t, has('zsh'), 'zsh')) return;
    execFileSync('zsh', ['-n', 'completions/_halcyon'], { cwd: REPO });
    const candidates = (what: string, ...words: string[]) => execFileSync('zsh', ['-c',
      `compdef(){}; source completions/_halcyon; words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}; _halcyon_candidates; print -r -- "\${(j: | :)${what}}"`],
    { cwd: REPO, encoding: 'utf8' }).trim();
    assert.match(candidates('subs', 'halcyon', 'queue', ''), /^check:Check the queue file for damage \| salvage:/);
    assert.match(candidates('subs', 'halcyon', ''), /(^| \| )newaliases:Read the aliases file \| /);
    assert.equal(candidates('values', 'halcyon', 'queue', 'shape', '--by', ''), 'domain | destination | sender-domain');
    assert.match(candidates('opts', 'halcyon', 'queue', 'list', '--domain', 'x.test', '--'), /(^| \| )--state:only recipients in this state/);
    assert.equal(candidates('files', 'halcyon', '--config', ''), '1');
  });

  test('halcyon completion bash|zsh prints the installed scripts', async () => {
    for (const [shell, file] of [['bash', 'completions/halcyon.bash'], ['zsh', 'completions/_halcyon']] as const) {
      const r = await runCli(['completion', shell]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, readFileSync(join(REPO, file), 'utf8'));
    }
    assert.equal((await runCli(['completion', 'fish'])).code, 2);
    assert.ok(existsSync(join(REPO, 'man/halcyon.8')));
  });
});
