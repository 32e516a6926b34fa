/**
 * test/support/dkim-peers — DKIM software nobody here wrote, as test peers:
 *
 * - dkimpy (Debian `python3-dkim`, run with /usr/bin/python3): `dkim.verify`
 *   and `dkim.arc_verify` with a `dnsfunc` that answers from the records
 *   given, and `dkim.sign`;
 * - OpenDKIM's library (`libopendkim.so.11`, what `opendkim-tools` is built
 *   on), driven through Python's ctypes with DKIM_QUERY_FILE: a key file
 *   stands in for DNS. `opendkim-testmsg` itself can only ask the system's
 *   resolvers, which a test cannot point at its own records.
 *
 * Records are `{ "sel._domainkey.example.test": "v=DKIM1; k=rsa; p=…" }`.
 * Each call runs a short Python process; nothing is left behind.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PYTHON = '/usr/bin/python3';

const DKIMPY_VERIFY = `
import json, sys, dkim
recs = {k.rstrip('.').lower(): v.encode() for k, v in json.load(open(sys.argv[1])).items()}
def dnsfunc(name, timeout=5):
    return recs.get(name.decode().rstrip('.').lower())
ok = dkim.verify(sys.stdin.buffer.read(), dnsfunc=dnsfunc)
print('pass' if ok else 'fail')
`;

const DKIMPY_SIGN = `
import sys, dkim
sel, dom, keyfile = sys.argv[1], sys.argv[2], sys.argv[3]
msg = sys.stdin.buffer.read()
sig = dkim.sign(msg, sel.encode(), dom.encode(), open(keyfile, 'rb').read(),
                include_headers=[b'from', b'to', b'subject', b'date', b'message-id'],
                canonicalize=(b'relaxed', b'relaxed'))
sys.stdout.buffer.write(sig + msg)
`;

const DKIMPY_ARC_VERIFY = `
import json, sys, dkim
recs = {k.rstrip('.').lower(): v.encode() for k, v in json.load(open(sys.argv[1])).items()}
def dnsfunc(name, timeout=5):
    return recs.get(name.decode().rstrip('.').lower())
cv, results, comment = dkim.arc_verify(sys.stdin.buffer.read(), dnsfunc=dnsfunc)
print(cv.decode() + ' ' + comment)
`;

// Constants from OpenDKIM's dkim.h: DKIM_OP_SETOPT 1, DKIM_OPTS_QUERYMETHOD 6, DKIM_OPTS_QUERYINFO 7, DKIM_QUERY_FILE 1.
const OPENDKIM_VERIFY = `
import ctypes, sys
lib = ctypes.CDLL('libopendkim.so.11')
P, I, S = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
lib.dkim_init.restype = P; lib.dkim_init.argtypes = [P, P]
lib.dkim_options.argtypes = [P, I, I, P, S]
lib.dkim_verify.restype = P; lib.dkim_verify.argtypes = [P, ctypes.c_char_p, P, ctypes.POINTER(I)]
lib.dkim_header.argtypes = [P, ctypes.c_char_p, S]
lib.dkim_eoh.argtypes = [P]
lib.dkim_body.argtypes = [P, ctypes.c_char_p, S]
lib.dkim_eom.argtypes = [P, P]
lib.dkim_getresultstr.restype = ctypes.c_char_p; lib.dkim_getresultstr.argtypes = [I]
h = lib.dkim_init(None, None)
q = I(1)
lib.dkim_options(h, 1, 6, ctypes.byref(q), ctypes.sizeof(q))
path = sys.argv[1].encode()
lib.dkim_options(h, 1, 7, ctypes.c_char_p(path), len(path))
st = I(0)
d = lib.dkim_verify(h, b'halcyon-test', None, ctypes.byref(st))
head, _, body = sys.stdin.buffer.read().partition(b'\\r\\n\\r\\n')
fields = []
for line in head.split(b'\\r\\n'):
    if line[:1] in (b' ', b'\\t') and fields: fields[-1] += b'\\r\\n' + line
    else: fields.append(line)
for f in fields: lib.dkim_header(d, f, len(f))
lib.dkim_eoh(d)
lib.dkim_body(d, body, len(body))
r = lib.dkim_eom(d, None)
print('pass' if r == 0 else 'fail: ' + lib.dkim_getresultstr(r).decode())
`;

export interface Verdict {
  readonly pass: boolean;
  /** What the verifier printed (its reason on a failure). */
  readonly detail: string;
}

function python(script: string, args: readonly string[], input: Buffer): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(PYTHON, ['-c', script, ...args], { input, timeout: 30_000, maxBuffer: 64 * 1024 * 1024 });
  return { stdout: r.stdout?.toString('latin1') ?? '', stderr: r.stderr?.toString('utf8') ?? '', status: r.status };
}

function withTemp<T>(f: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-dkim-'));
  try {
    return f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function haveDkimpy(): boolean {
  return existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import dkim, nacl'], { timeout: 30_000 }).status === 0;
}

export function haveOpendkim(): boolean {
  return existsSync('/usr/sbin/opendkim-testmsg') && existsSync(PYTHON)
    && spawnSync(PYTHON, ['-c', "import ctypes; ctypes.CDLL('libopendkim.so.11')"], { timeout: 10_000 }).status === 0;
}

export function dkimpyVerify(message: Buffer, records: Readonly<Record<string, string>>): Verdict {
  return withTemp((dir) => {
    const file = join(dir, 'records.json');
    writeFileSync(file, JSON.stringify(records));
    const r = python(DKIMPY_VERIFY, [file], message);
    return { pass: r.stdout.trim() === 'pass', detail: `${r.stdout.trim()} ${r.stderr.trim()}`.trim() };
  });
}

export function opendkimVerify(message: Buffer, records: Readonly<Record<string, string>>): Verdict {
  return withTemp((dir) => {
    const file = join(dir, 'keys');
    writeFileSync(file, Object.entries(records).map(([name, value]) => `${name.replace(/\.$/, '')}\t${value}\n`).join(''));
    const r = python(OPENDKIM_VERIFY, [file], message);
    return { pass: r.stdout.trim() === 'pass', detail: `${r.stdout.trim()} ${r.stderr.trim()}`.trim() };
  });
}

/** dkimpy's ARC verification (`dkim.arc_verify`): pass when the chain validates (cv=pass). */
export function dkimpyArcVerify(message: Buffer, records: Readonly<Record<string, string>>): Verdict {
  return withTemp((dir) => {
    const file = join(dir, 'records.json');
    writeFileSync(file, JSON.stringify(records));
    const r = python(DKIMPY_ARC_VERIFY, [file], message);
    return { pass: r.stdout.trim().startsWith('pass'), detail: `${r.stdout.trim()} ${r.stderr.trim()}`.trim() };
  });
}

/** The message signed by dkimpy (relaxed/relaxed; From, To, Subject, Date, Message-ID). */
export function dkimpySign(message: Buffer, selector: string, domain: string, keyPem: string): Buffer {
  return withTemp((dir) => {
    const file = join(dir, 'key.pem');
    writeFileSync(file, keyPem, { mode: 0o600 });
    const r = spawnSync(PYTHON, ['-c', DKIMPY_SIGN, selector, domain, file], { input: message, timeout: 30_000 });
    if (r.status !== 0) throw new Error(`dkimpy sign failed: ${r.stderr?.toString()}`);
    return r.stdout;
  });
}
