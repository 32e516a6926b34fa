/**
 * cli/mailq — `halcyon mailq` (also the bin run by the name `mailq`): the
 * queue in Postfix's `postqueue -p` layout, for the habits and scripts of
 * postmasters. Postfix 3.7's long-queue-id columns (our ids are 16
 * characters): the id with `*` when a recipient is being delivered now or `!`
 * when the message is held, the size in bytes, the arrival time (local time,
 * `Mon Dec  7 00:12:34`), the sender (`MAILER-DAEMON` for `<>`); then each
 * waiting recipient, under the last reply it got in parentheses (recipients
 * with the same reply share one line), and a closing `-- N Kbytes in M
 * Requests.`. An empty queue prints `Mail queue is empty`.
 *
 * Only recipients still waiting are shown, as mailq shows only queued mail.
 * `formatMailq` is pure; `mailq` reads through cli/admin-client.
 */
import type { QueueEntry } from '../http/admin-api.js';
import { FINAL_STATES } from '../queue/model.js';
import { describeReply, printable } from '../queue/describe.js';
import { withBackend, type Common } from './queue-cmd.js';

/** Where recipients start: the id, size and date columns and their separators (17 + 1 + 8 + 1 + 19 + 1). */
const RECIPIENT_COLUMN = 47;
const REASON_INDENT = 8;

/** ctime's layout without the year, in local time, as postqueue prints arrival times. */
export function arrivalTime(ms: number): string {
  const d = new Date(ms);
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getDay()]!;
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getMonth()]!;
  const two = (n: number) => String(n).padStart(2, '0');
  return `${day} ${month} ${String(d.getDate()).padStart(2)} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export function formatMailq(entries: readonly QueueEntry[]): string {
  const waiting = entries
    .map((e) => ({ message: e.message, recipients: e.recipients.filter((r) => !FINAL_STATES.includes(r.state)) }))
    .filter((e) => e.recipients.length > 0);
  if (waiting.length === 0) return 'Mail queue is empty\n';
  let out = `${'----Queue ID-----'.padEnd(17)} ${'--Size--'.padStart(8)} ${'----Arrival Time----'.slice(0, 19)} -Sender/Recipient-------\n`;
  let bytes = 0;
  for (const { message: m, recipients } of waiting) {
    bytes += m.size;
    const mark = recipients.some((r) => r.state === 'inflight') ? '*' : m.held ? '!' : ' ';
    out += `${(m.id + mark).padEnd(17)} ${String(m.size).padStart(8)} ${arrivalTime(m.receivedAt)} ${m.sender === '' ? 'MAILER-DAEMON' : printable(m.sender)}\n`;
    // Recipients in the order of their first reply, each reply printed once above its recipients.
    const byReason = new Map<string, string[]>();
    for (const r of recipients) {
      const reason = r.state === 'inflight' || !r.lastReply ? '' : describeReply(r.lastReply);
      byReason.set(reason, [...(byReason.get(reason) ?? []), printable(r.address)]);
    }
    for (const [reason, addresses] of byReason) {
      if (reason) out += `${' '.repeat(REASON_INDENT)}(${reason})\n`;
      for (const a of addresses) out += `${' '.repeat(RECIPIENT_COLUMN)}${a}\n`;
    }
    out += '\n';
  }
  return `${out}-- ${Math.floor(bytes / 1024)} Kbytes in ${waiting.length} Request${waiting.length === 1 ? '' : 's'}.\n`;
}

/** `halcyon mailq` / `mailq`. */
export function mailq(opts: Common): Promise<void> {
  return withBackend(opts, async (b) => {
    process.stdout.write(formatMailq(await b.list({})));
  }, 'readonly');
}
