/**
 * cli/queue-tools — `halcyon queue shape` (Postfix's qshape) and
 * `halcyon queue cat ID` (Postfix's postcat), through the running server's
 * admin API or, when it is stopped, the data_dir read-only (no file is
 * created, not even for a missing queue).
 *
 * Wiring only: the shape is computed by http/queue-shape (in AdminApi.shape),
 * the text made by cli/queue-tools-format. Exit codes as cli/queue-cmd's.
 */
import type { Command } from 'commander';
import { SHAPE_BY, type ShapeBy } from '../http/queue-shape.js';
import { common, print, UsageError, withBackend, type Common } from './queue-cmd.js';
import { catJson, formatCat, formatShape, splitMessage, type CatParts } from './queue-tools-format.js';

export function registerQueueTools(queue: Command): void {
  common(queue.command('shape'))
    .description('qshape: waiting recipients per domain × age of their message (0-5, 5-10 … 1280+ minutes), held ones apart')
    .option('--by <key>', `domain (the recipient's, default) or destination (the MX host set a running server maps it to; a stopped server's queue knows its domain or route)`, 'domain')
    .action((opts: Common & { by: string }) => withBackend(opts, async (b) => {
      if (!SHAPE_BY.includes(opts.by as ShapeBy)) throw new UsageError(`--by must be one of ${SHAPE_BY.join(', ')}`);
      const s = await b.shape(opts.by as ShapeBy);
      print(opts.json, s, formatShape(s));
    }, 'readonly'));

  common(queue.command('cat <id>'))
    .description('postcat: a queued message\'s envelope (recipients with every reply), headers and body; control characters are shown escaped')
    // postcat's -h is "headers": help stays on --help.
    .helpOption('--help', 'display help for command')
    .option('-e, --envelope', 'the envelope and recipients only')
    .option('-h, --headers', 'the header block only')
    .option('-b, --body', 'the body only')
    .option('--raw', 'the stored bytes (whole message, or -h / -b part) as they are, for saving to a file')
    .action((id: string, opts: Common & { envelope?: boolean; headers?: boolean; body?: boolean; raw?: boolean }) => withBackend(opts, async (b) => {
      const any = Boolean(opts.envelope || opts.headers || opts.body);
      const parts: CatParts = { envelope: !any || Boolean(opts.envelope), headers: !any || Boolean(opts.headers), body: !any || Boolean(opts.body) };
      if (opts.raw) {
        if (opts.envelope || opts.json) throw new UsageError('--raw prints the stored message: not with --envelope or --json');
        const content = await b.content(id);
        const { header, body } = splitMessage(content);
        process.stdout.write(parts.headers && parts.body ? content : parts.headers ? header : body);
        return;
      }
      const [detail, content] = await Promise.all([b.show(id), parts.headers || parts.body ? b.content(id) : Buffer.alloc(0)]);
      print(opts.json, catJson(detail, content, parts), formatCat(detail, content, parts, Date.now()));
    }, 'readonly'));
}
