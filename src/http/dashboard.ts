/**
 * http/dashboard — what the admin listener serves for the dashboard: the page
 * shell at GET / (no data in it: the front end in http/ui fetches the admin
 * API and builds the DOM with textContent), the front end's compiled modules
 * and stylesheet, and uPlot from node_modules (the page works offline, no CDN).
 *
 * Every dashboard response carries a Content-Security-Policy that allows
 * scripts from this server only (no inline script, no eval), so text from
 * mail can never run even if it reached the DOM as markup. The page carries
 * the server's CSRF token (http/csrf) in a meta tag; the front end sends it
 * back in a header on actions. Assets are a fixed table: no path from the
 * request reaches the file system. Does not authenticate (http/server does).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'",
  "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
].join('; ');

/** Headers on every dashboard response (page and assets). */
export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': DASHBOARD_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
};

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const uplotDir = (): string => dirname(createRequire(import.meta.url).resolve('uplot/package.json'));

/** URL path → file and type. The modules are tsc's output next to this file; the stylesheet and icon are not compiled, so they are read from src/. */
const ASSETS: Readonly<Record<string, { readonly file: () => string; readonly type: string }>> = {
  '/ui/dashboard.css': { file: () => here('../../../src/http/ui/dashboard.css'), type: CSS },
  '/ui/icon.svg': { file: () => here('../../../src/http/ui/icon.svg'), type: 'image/svg+xml' },
  // The wording of replies and the escaping of control characters, shared with the CLI (a pure module, no Node API at load).
  '/queue/describe.js': { file: () => here('../queue/describe.js'), type: JS },
  // A tenant's line under its destination, the CLI's wording (pure; it reads NEVER from the gate's pure module).
  '/queue/describe-tenants.js': { file: () => here('../queue/describe-tenants.js'), type: JS },
  '/queue/destination-gate.js': { file: () => here('../queue/destination-gate.js'), type: JS },
  '/ui/vendor/uPlot.iife.min.js': { file: () => `${uplotDir()}/dist/uPlot.iife.min.js`, type: JS },
  '/ui/vendor/uPlot.min.css': { file: () => `${uplotDir()}/dist/uPlot.min.css`, type: CSS },
};
const MODULE = /^\/ui\/([a-z-]+)\.js$/;

/** The asset at a URL path, or undefined when there is none (404). */
export async function dashboardAsset(path: string): Promise<{ body: Buffer; type: string } | undefined> {
  const fixed = ASSETS[path];
  const m = MODULE.exec(path);
  const file = fixed ? fixed.file() : m ? here(`./ui/${m[1]}.js`) : undefined;
  if (file === undefined) return undefined;
  try {
    return { body: await readFile(file), type: fixed?.type ?? JS };
  } catch {
    return undefined;
  }
}

const attr = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page shell: the token in a meta tag, the scripts by URL, and empty regions the front end fills. */
export function dashboardPage(opts: { hostname: string; csrfToken: string }): string {
  return `<!doctype html>
<html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<meta name=halcyon-csrf content="${attr(opts.csrfToken)}">
<title>Halcyon — ${attr(opts.hostname)}</title>
<link rel=icon href="/ui/icon.svg" type="image/svg+xml">
<link rel=stylesheet href="/ui/vendor/uPlot.min.css">
<link rel=stylesheet href="/ui/dashboard.css">
<script src="/ui/vendor/uPlot.iife.min.js" defer></script>
<script type=module src="/ui/main.js"></script>
</head>
<body>
<header><h1>Halcyon on <span id=hostname>${attr(opts.hostname)}</span></h1>
<p><span id=updated>loading…</span> <output id=status></output></p>
<nav><a href="#/">overview</a> · <a href="/metrics">metrics</a> · <label><input type=checkbox id=autorefresh checked> refresh every 5 s</label></nav></header>
<main id=app><noscript>The dashboard needs JavaScript; the admin API (/api/…) and the CLI work without it.</noscript></main>
<dialog id=confirm><p id=confirm-text></p><p><button type=button id=confirm-cancel>Cancel</button> <button type=button id=confirm-ok>Confirm</button></p></dialog>
</body></html>
`;
}
