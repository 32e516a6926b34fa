/// <reference lib="dom" />
/**
 * http/ui/main — the dashboard's entry module: picks the view from the URL
 * hash (#/ with an optional ?q=&state= search, #/message/ID) and refreshes
 * it every 5 s while the tab is visible and the box is ticked, and at once
 * after an action. A refresh never rebuilds the view the user is in: the view
 * replaces only its data. A refresh that is still running is not started
 * twice. Does not render anything itself.
 */
import { REFRESH_EVENT } from './actions.js';
import { MessagePage } from './message.js';
import { Overview, type Search } from './overview.js';

const EVERY_MS = 5_000;

interface View { readonly root: HTMLElement; refresh(now: number): Promise<void> }

let view: View | undefined;
let viewKey = '';
let running = false;

function parseHash(): { key: string; message?: string; search: Search } {
  const h = location.hash.replace(/^#/, '') || '/';
  const m = /^\/message\/([^/?]+)/.exec(h);
  if (m) return { key: `message:${m[1]}`, message: decodeURIComponent(m[1] ?? ''), search: { q: '', state: '' } };
  const qs = new URLSearchParams(h.includes('?') ? h.slice(h.indexOf('?') + 1) : '');
  return { key: 'overview', search: { q: qs.get('q') ?? '', state: qs.get('state') ?? '' } };
}

function searchHash(s: Search): string {
  const qs = new URLSearchParams();
  if (s.q) qs.set('q', s.q);
  if (s.state) qs.set('state', s.state);
  const t = qs.toString();
  return `#/${t ? `?${t}` : ''}`;
}

async function refresh(): Promise<void> {
  if (running || !view) return;
  running = true;
  try {
    await view.refresh(Date.now());
    const u = document.getElementById('updated');
    if (u) u.textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    const u = document.getElementById('updated');
    if (u) u.textContent = `refresh failed: ${(err as Error).message}`;
  } finally {
    running = false;
  }
}

function route(): void {
  const r = parseHash();
  if (r.key === viewKey && view instanceof Overview) {
    view.setSearch(r.search);
  } else {
    viewKey = r.key;
    view = r.message !== undefined ? new MessagePage(r.message) : new Overview(r.search, (s) => { location.hash = searchHash(s); });
    document.getElementById('app')?.replaceChildren(view.root);
    window.scrollTo(0, 0);
  }
  void refresh();
}

window.addEventListener('hashchange', route);
document.addEventListener(REFRESH_EVENT, () => void refresh());
setInterval(() => {
  const auto = document.getElementById('autorefresh') as HTMLInputElement | null;
  if (document.visibilityState === 'visible' && (auto?.checked ?? true)) void refresh();
}, EVERY_MS);
route();
