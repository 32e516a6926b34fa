/**
 * cli/queue-tools — `halcyon queue shape` (Postfix's qshape) and
 * `halcyon queue cat ID` (Postfix's postcat), through the running server's
 * admin API or, when it is stopped, the data_dir read-only (no file is
 * created, not even for a missing queue).
 *
 * Wiring only: the shape is computed by http/queue-shape (in AdminApi.shape),
 * the text made by cli/queue-tools-format. Exit codes as cli/queue-cmd's.
 */
import { SHAPE_BY, type ShapeBy } from '../http/queue-shape.js';
import { print, UsageError, withBackend, type Common } from './queue-cmd.js';
import { catJson, formatCat, formatShape, splitMessage, type CatParts } from './queue-tools-format.js';

/** `halcyon queue shape`. */
export function queueShape(opts: Common & { by: string }): Promise<void> {
  return withBackend(opts, async (b) => {
    if (!SHAPE_BY.includes(opts.by as ShapeBy)) throw new UsageError(`--by must be one of ${SHAPE_BY.join(', ')}`);
    const s = await b.shape(opts.by as ShapeBy);
    print(opts.json, s, formatShape(s));
  }, 'readonly');
}

/** `halcyon queue cat ID`. */
export function queueCat(id: string, opts: Common & { envelope?: boolean; headers?: boolean; body?: boolean; raw?: boolean }): Promise<void> {
  return withBackend(opts, async (b) => {
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
  }, 'readonly');
}
