/// <reference lib="dom" />
/**
 * http/ui/dom — the one way the dashboard builds DOM: elements from a tag,
 * a few attributes and children, where every string child becomes a text
 * node (textContent). Nothing here parses markup, so text from mail
 * (subjects, addresses, remote replies) can never become HTML.
 * Does not fetch or know the API.
 */

export type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined | ((ev: Event) => void)>;

/** `el('td', {class: 'n'}, 3)`; `on…` attributes take listeners, `false`/undefined attributes are left out. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in e) (e as HTMLInputElement).value = String(v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  append(e, children);
  return e;
}

export function append(parent: Element, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces the children of the element with the id (a region the page shell or a view made). */
export function fill(id: string, ...children: Child[]): void {
  const e = document.getElementById(id);
  if (!e) return;
  e.replaceChildren();
  append(e, children);
}

/** "3m", "2h5m", "1d4h": how long ago / how long until, for tables. */
export function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
  return `${Math.floor(h / 24)}d${h % 24 ? `${h % 24}h` : ''}`;
}

export const time = (at: number): string => new Date(at).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');

export function table(head: readonly string[], rows: readonly HTMLTableRowElement[], empty = 'none'): HTMLTableElement {
  return el('table', {}, el('thead', {}, el('tr', {}, ...head.map((h) => el('th', {}, h)))),
    el('tbody', {}, ...(rows.length > 0 ? rows : [el('tr', {}, el('td', { colspan: head.length, class: 'empty' }, empty))])));
}
