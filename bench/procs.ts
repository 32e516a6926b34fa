/**
 * bench/procs — the bench's process bookkeeping: every process or instance
 * it starts registers a stop function here, and they are all run on normal
 * completion, on error, on SIGINT/SIGTERM and (synchronously, best effort)
 * on exit, so no Postfix, smtp-sink or Halcyon outlives the bench.
 *
 * Also small shared helpers: a bounded sleep/poll and RSS readings from
 * /proc; the free port, greeting and closed-port probes are re-exported from
 * test/support/postfix-instance.ts. It does not start anything itself.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';

interface Cleanup {
  readonly name: string;
  /** Graceful, awaited on the normal path. */
  readonly stop: () => Promise<void>;
  /** Synchronous, for process 'exit' (no event loop left). */
  readonly stopSync: () => void;
}

const cleanups = new Set<Cleanup>();

/** Registers a stopper; returns a function that runs it once and unregisters it. */
export function track(name: string, stop: () => Promise<void>, stopSync: () => void): () => Promise<void> {
  const c: Cleanup = { name, stop, stopSync };
  cleanups.add(c);
  return async () => {
    if (!cleanups.delete(c)) return;
    await stop();
  };
}

/** Tracks a child process: SIGTERM, then SIGKILL after 5 s. */
export function trackChild(name: string, child: ChildProcess): () => Promise<void> {
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  return track(name, async () => {
    if (!alive()) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => { if (alive()) child.kill('SIGKILL'); }, 5_000);
    await exited;
    clearTimeout(t);
  }, () => { if (alive()) child.kill('SIGKILL'); });
}

/** Stops everything still registered (newest first). */
export async function stopAll(): Promise<void> {
  for (const c of [...cleanups].reverse()) {
    cleanups.delete(c);
    try { await c.stop(); } catch (err) { console.error(`bench: stopping ${c.name} failed: ${(err as Error).message}`); }
  }
}

let installed = false;
/** Installs the exit/signal handlers once. */
export function installExitHandlers(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    for (const c of cleanups) { try { c.stopSync(); } catch { /* exiting anyway */ } }
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => { void stopAll().finally(() => process.exit(130)); });
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls pred every `everyMs` until true or the deadline; returns whether it became true. */
export async function pollUntil(pred: () => boolean, deadline: number, everyMs = 20): Promise<boolean> {
  for (;;) {
    if (pred()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

/** A loopback port that was free a moment ago (shared with the tests). */
export { freeLoopbackPort as freePort, greets, portClosed } from '../test/support/postfix-instance.js';

/** VmRSS of one process in KiB, or 0 when it is gone. */
export function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Proportional set size (shared pages split among their users) in KiB, or 0 when gone. */
export function pssKb(pid: number): number {
  try {
    const m = /Pss:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** pid and its descendants, read from /proc/PID/stat (ppid is field 4). */
export function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // comm may hold spaces and parens: the fields after the last ")" are fixed.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(e), Number(rest[1]));
    } catch { /* exited meanwhile */ }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) {
    for (const [pid, pp] of parent) if (pp === out[i]) out.push(pid);
  }
  return out.filter((p) => existsSync(`/proc/${p}`));
}

/** Kernel clock ticks per second for /proc/PID/stat times (USER_HZ; 100 on Linux x86-64). */
const CLK_TCK = Number(sh('getconf', ['CLK_TCK']).trim()) || 100;

/**
 * CPU seconds (user + system) spent by a process tree: for each live process,
 * its own utime + stime and the cutime + cstime of the children it has reaped.
 * A Postfix smtpd that served its sessions and exited is counted through the
 * master that reaped it; one still alive is counted on its own; none twice.
 */
export function cpuSeconds(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the comm's last ")": state is [0], utime [11], stime [12], cutime [13], cstime [14].
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
      ticks += f[11]! + f[12]! + f[13]! + f[14]!;
    } catch { /* exited meanwhile */ }
  }
  return ticks / CLK_TCK;
}

/** Runs a command synchronously and returns its stdout ('' on failure). */
export function sh(cmd: string, args: readonly string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return '';
  }
}
