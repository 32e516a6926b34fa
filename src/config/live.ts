/**
 * config/live — the one holder of the configuration in force on a running
 * server, and of what is built from it (parsed settings, matchers, the
 * mailboxes of [[domains]]).
 *
 * Every service reads `live.current` at the point of use; a reload (SIGHUP)
 * swaps the whole snapshot at once, so no service ever sees half of an old
 * configuration and half of a new one, and `current.config` is exactly what
 * is in force (settings that need a restart keep their running values in it).
 * Does not validate, read files or decide what a reload may change: app does.
 */

export class Live<T> {
  #current: T;
  #generation = 0;

  constructor(initial: T) {
    this.#current = initial;
  }

  /** The snapshot in force now. Read it at use time; do not keep it across awaits that may span a reload. */
  get current(): T {
    return this.#current;
  }

  /** How many times the snapshot was replaced (0 at start). */
  get generation(): number {
    return this.#generation;
  }

  /** Replaces the snapshot (app's reload, after everything in it was built). */
  replace(next: T): void {
    this.#current = next;
    this.#generation++;
  }
}

/** `a.b.c` of an object, or undefined. */
export function valueAt(obj: unknown, path: string): unknown {
  let v: unknown = obj;
  for (const k of path.split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

/** A copy of `obj` with `path` set to `value` (each object on the way copied, nothing mutated). */
export function withValueAt<O>(obj: O, path: string, value: unknown): O {
  const [head, ...rest] = path.split('.');
  const o = obj as Record<string, unknown>;
  if (head === undefined) return obj;
  return { ...o, [head]: rest.length === 0 ? value : withValueAt(o[head] ?? {}, rest.join('.'), value) } as O;
}
