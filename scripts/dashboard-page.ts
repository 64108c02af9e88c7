/**
 * Stands in for a daemon's web server: serves a dashboard page from 127.0.0.1 with the consent
 * document inlined, as README "Web dashboards" tells a daemon to, and the built browser module
 * beside it. The browser tests and `npm run demo` use it. Every request it gets is recorded.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export const DASHBOARD_MODULE = path.resolve(__dirname, '../dist/anonymous-statistics-dashboard.js');
export const MODULE_PATH = '/anonymous-statistics-dashboard.js';
/** An empty page to navigate to: leaving the dashboard fires its real pagehide. */
export const BLANK_PATH = '/blank';
/** Answered with 204: a request a test makes last, so anything the page sent before is seen. */
export const BARRIER_PATH = '/barrier';

export interface PageOptions {
  /** The document `anonymous-statistics consent` printed, as text; undefined inlines none. */
  consent?: string;
  /** startDashboardTelemetry's options (JSON); a debug logger filling window.telemetryLog is added. */
  options?: Record<string, unknown>;
}

/** `<` escaped, so no text can close the script element it is inlined in. */
function inlineJson(text: string): string {
  return text.replace(/</g, '\\u003c');
}

export function dashboardPage({ consent, options = {} }: PageOptions): string {
  const consentElement = consent === undefined ? '' : `<script type="application/json" id="anonymous-statistics-consent">${inlineJson(consent)}</script>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>example-daemon dashboard</title>
${consentElement}
<script type="module">
import { startDashboardTelemetry } from '${MODULE_PATH}';
window.telemetryLog = [];
const consent = document.getElementById('anonymous-statistics-consent');
const options = Object.assign(${inlineJson(JSON.stringify(options))}, { debug: (line) => window.telemetryLog.push(line) });
const telemetry = startDashboardTelemetry(consent ? consent.textContent : undefined, options);
window.telemetry = telemetry;
telemetry.pageview('overview');
for (const button of document.querySelectorAll('button[data-action]')) button.addEventListener('click', () => telemetry.action(button.dataset.action));
document.getElementById('withdraw').addEventListener('click', () => telemetry.stop());
</script>
</head>
<body>
<h1>example-daemon</h1>
<p>A stand-in for a daemon's dashboard. It sent a <code>$pageview</code> when it loaded (unless
telemetry is off); each button below sends a <code>dashboard_action</code>. Nothing here shows
that telemetry exists, as on a real dashboard; <code>npm run demo</code> prints what arrived.</p>
<button data-action="open alerts">Open alerts</button>
<button data-action="export chart">Export chart</button>
<button id="withdraw">Withdraw consent (stop)</button>
</body>
</html>
`;
}

export interface PageServer {
  /** http://127.0.0.1:PORT */
  origin: string;
  port: number;
  /** "METHOD /path" of every request, in arrival order. */
  requests: string[];
  /** Serves `html` at a new path and returns that path. */
  add(html: string): string;
  close(): Promise<void>;
}

export async function startPageServer(moduleFile = DASHBOARD_MODULE): Promise<PageServer> {
  const pages = new Map<string, string>();
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const route = new URL(req.url ?? '/', 'http://page').pathname;
    requests.push(`${req.method} ${route}`);
    const html = route === BLANK_PATH ? '<!doctype html><link rel="icon" href="data:,"><title>blank</title>' : pages.get(route);
    if (html !== undefined) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html);
    } else if (route === MODULE_PATH) {
      // Read at every request, so a fresh build is what the page gets.
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' }).end(readFileSync(moduleFile));
    } else if (route === BARRIER_PATH) {
      res.writeHead(204, { 'cache-control': 'no-store' }).end();
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    requests,
    add: (html) => {
      const route = `/page/${pages.size + 1}`;
      pages.set(route, html);
      return route;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
