/**
 * cli/progress — a tiny progress reporter for long queue operations: a
 * redrawn bar on a TTY (stderr), one plain line per step otherwise, so logs
 * and pipes stay readable. Writes to stderr only; stdout stays for results.
 */
export interface Progress {
  tick(done: number): void;
  end(): void;
}

export function progress(label: string, total: number, out: NodeJS.WriteStream = process.stderr): Progress {
  const tty = out.isTTY === true;
  const width = 30;
  let last = -1;
  return {
    tick(done) {
      if (tty) {
        const filled = total === 0 ? width : Math.round((done / total) * width);
        out.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`);
      } else if (done !== last) {
        out.write(`${label}: ${done}/${total}\n`);
      }
      last = done;
    },
    end() {
      if (tty) out.write('\n');
    },
  };
}
