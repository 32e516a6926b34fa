/// <reference lib="dom" />
/**
 * http/ui/actions — the action buttons (flush, hold, release, bounce,
 * delete; remove from the suppression list) and their confirmation step: every action first opens the page's
 * <dialog id=confirm> saying what it will do to which message; only
 * "Confirm" sends the request. The outcome goes to the status line and the
 * views are refreshed. Does not decide anything the API decides.
 */
import { api } from './api.js';
import { el } from './dom.js';

export const REFRESH_EVENT = 'halcyon:refresh';

export function setStatus(text: string, kind: 'ok' | 'error' | 'info' = 'info'): void {
  const s = document.getElementById('status');
  if (!s) return;
  s.textContent = text;
  s.className = kind;
}

/** Opens the confirmation dialog; resolves true on Confirm, false on Cancel or Escape. */
function confirmStep(question: string): Promise<boolean> {
  const dialog = document.getElementById('confirm') as HTMLDialogElement | null;
  const text = document.getElementById('confirm-text');
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  if (!dialog || !text || !ok || !cancel) return Promise.resolve(false);
  text.textContent = question;
  return new Promise((resolve) => {
    const done = (answer: boolean) => {
      ok.removeEventListener('click', yes);
      cancel.removeEventListener('click', no);
      dialog.removeEventListener('cancel', no);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const yes = () => done(true);
    const no = () => done(false);
    ok.addEventListener('click', yes);
    cancel.addEventListener('click', no);
    dialog.addEventListener('cancel', no);
    dialog.showModal();
  });
}

async function act(question: string, run: () => Promise<string>): Promise<void> {
  if (!(await confirmStep(question))) return setStatus('cancelled', 'info');
  try {
    setStatus(await run(), 'ok');
  } catch (err) {
    setStatus(`failed: ${(err as Error).message}`, 'error');
  }
  document.dispatchEvent(new Event(REFRESH_EVENT));
}

export type Action = 'flush' | 'hold' | 'release' | 'bounce' | 'delete';

const VERBS: Record<Action, { ask: string; run: (id: string) => Promise<string> }> = {
  flush: { ask: 'Retry its waiting recipients now', run: async (id) => {
    const r = await api.flush({ id });
    const blocked = r.blocked.map((b) => `${b.recipients} wait for ${b.destination} (${b.why})`).join('; ');
    return `flushed ${id}: ${r.flushed} recipient(s) due now${r.held ? `, ${r.held} held` : ''}${blocked ? `; ${blocked}` : ''}`;
  } },
  hold: { ask: 'Hold it (no delivery until released)', run: async (id) => `held ${(await api.hold(id)).ids.join(', ')}` },
  release: { ask: 'Release it', run: async (id) => `released ${(await api.release(id)).ids.join(', ')}` },
  bounce: { ask: 'Bounce it: fail every waiting recipient and tell the sender', run: async (id) => {
    const r = await api.bounce(id);
    return `bounced ${id}: ${r.bounced} recipient(s)${r.skipped ? `, ${r.skipped} in flight left alone` : ''}`;
  } },
  delete: { ask: 'Delete it from the queue (nobody is told)', run: async (id) => `deleted ${id}: ${(await api.remove(id)).deleted} message(s)` },
};

/** A button that asks, then acts on message `id`. */
export function actionButton(action: Action, id: string): HTMLButtonElement {
  const v = VERBS[action];
  return el('button', { type: 'button', class: `action ${action}`, 'data-action': action, onclick: () => void act(`${v.ask}? Message ${id}`, () => v.run(id)) }, action);
}

/** The actions that make sense for a message in its state. */
export function actionButtons(id: string, held: boolean): HTMLElement {
  const list: Action[] = ['flush', held ? 'release' : 'hold', 'bounce', 'delete'];
  return el('span', { class: 'actions' }, ...list.map((a) => actionButton(a, id)));
}

/** Takes an address off the suppression list, after asking. */
export function unsuppressButton(address: string): HTMLButtonElement {
  return el('button', { type: 'button', class: 'action unsuppress', 'data-action': 'unsuppress', onclick: () => void act(
    `Take ${address} off the suppression list? Mail to it will be tried again.`,
    async () => `removed ${(await api.unsuppress(address)).removed} entry for ${address}`) }, 'remove');
}

/** Flush of the whole queue (every deferred recipient due now). */
export function flushAllButton(): HTMLButtonElement {
  return el('button', { type: 'button', class: 'action flush', onclick: () => void act('Retry every deferred recipient now?', async () => {
    const r = await api.flush({});
    const behind = r.blocked.reduce((n, b) => n + b.recipients, 0);
    return `${r.flushed} recipient(s) due now${behind ? `; ${behind} wait for destinations in backoff` : ''}`;
  }) }, 'flush queue');
}
