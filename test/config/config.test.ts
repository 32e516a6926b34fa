import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configDocs } from '../../src/config/docs.js';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));

describe('configuration', () => {
  test('embedded defaults work without a file', () => {
    const cfg = loadConfig(undefined);
    assert.deepEqual(cfg.smtp.listen, ['127.0.0.1:2525']);
    assert.equal(cfg.smtp.max_recipients, 1000);
    assert.equal(cfg.delivery.retry_initial, '5m');
    assert.equal(cfg.domains[0]?.name, 'localhost');
  });

  test('every error is reported with its key path, unknown keys included', () => {
    try {
      parseConfig({ smtp: { listen: ['nope'], max_recipent: 3 }, delivery: { retry_max: 'soon' } });
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      const paths = err.problems.map((p) => p.path);
      assert.ok(paths.includes('smtp.listen.0'), paths.join());
      assert.ok(paths.includes('delivery.retry_max'), paths.join());
      assert.ok(err.problems.some((p) => p.path === 'smtp' && /max_recipent/.test(p.message)), JSON.stringify(err.problems));
    }
  });

  test('routes: an LMTP route takes hosts or a socket, exactly one; a socket needs protocol = "lmtp"', () => {
    const ok = parseConfig({ routes: { 'a.test': { protocol: 'lmtp', socket: '/run/dovecot/lmtp' }, 'b.test': { protocol: 'lmtp', hosts: ['127.0.0.1:24'] } } });
    assert.equal(typeof ok.routes['a.test'] === 'object' && !Array.isArray(ok.routes['a.test']) ? ok.routes['a.test'].socket : undefined, '/run/dovecot/lmtp');
    const bad = (route: unknown): string[] => {
      try {
        parseConfig({ routes: { 'x.test': route } });
        return [];
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        return err.problems.map((p) => `${p.path}: ${p.message}`);
      }
    };
    assert.ok(bad({ protocol: 'lmtp' }).some((m) => /exactly one of hosts or socket/.test(m)));
    assert.ok(bad({ protocol: 'lmtp', socket: '/s', hosts: ['127.0.0.1:24'] }).some((m) => /exactly one of hosts or socket/.test(m)));
    assert.ok(bad({ socket: '/s' }).some((m) => /socket is for protocol = "lmtp"/.test(m)));
    assert.ok(bad({ protocol: 'lmtp', socket: 'relative' }).some((m) => /absolute path/.test(m)));
  });

  test('`halcyon config check` prints errors and exits 2; a good file says ok', () => {
    const dir = mkdtempSync(join(tmpdir(), 'halcyon-cfg-'));
    const bad = join(dir, 'bad.toml');
    writeFileSync(bad, '[smtp]\nlisten = ["127.0.0.1"]\nbogus = 1\n');
    const r = spawnSync(process.execPath, [CLI, 'config', 'check', bad], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stdout, /smtp\.listen\.0: expected "host:port"/);
    assert.match(r.stdout, /smtp: unknown key\(s\): bogus/);
    const good = join(dir, 'good.toml');
    writeFileSync(good, 'hostname = "mx.example.test"\n[routes]\n"example.test" = "127.0.0.1:2626"\n');
    assert.match(execFileSync(process.execPath, [CLI, 'config', 'check', good], { encoding: 'utf8' }), /ok/);
    const shown = execFileSync(process.execPath, [CLI, 'config', 'show', '--json', '--config', good], { encoding: 'utf8' });
    const cfg = JSON.parse(shown) as { hostname: string; smtp: { max_message_size: string } };
    assert.equal(cfg.hostname, 'mx.example.test');
    assert.equal(cfg.smtp.max_message_size, '35MiB', 'defaults are shown');
  });

  test('docs/configuration.md is generated from the schema and current', () => {
    const onDisk = readFileSync(join(REPO, 'docs/configuration.md'), 'utf8');
    assert.equal(onDisk, configDocs(), 'run: node dist/src/cli/main.js config docs > docs/configuration.md');
    for (const key of ['smtp.max_message_size', 'delivery.destination_backoff', 'relay.networks', 'domains[].over_quota_reply']) {
      assert.ok(onDisk.includes(`\`${key}\``), key);
    }
  });
});
