import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, test, type TestContext } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startEndpoint, type Endpoint } from '../../scripts/endpoint.ts';
import { BARRIER_PATH, BLANK_PATH, dashboardPage, MODULE_PATH, startPageServer, type PageOptions, type PageServer } from '../../scripts/dashboard-page.ts';
import { dashboardOutfile } from '../../scripts/build.ts';
import { BUNDLE, endpoint, makeRoot, runBundle, tempDir } from '../support/helpers.ts';

/**
 * The dashboard channel in a real browser: Debian's Chromium, driven by playwright-core, loads
 * a page served from 127.0.0.1 that starts the built module with a consent document the built
 * CLI printed. Each case checks what the endpoint received, every request the page made, and
 * that nothing was stored. At the end, Chromium's own network log (every request the browser
 * made, keepalive ones after a page was left included) must match what the servers saw.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** The module built beside the CLI file under test, from the current src/. */
const MODULE_FILE = dashboardOutfile(BUNDLE);
const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';
const missing = existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;

/** A name that is not a secure context (plain http, not loopback), as a LAN dashboard is. */
const LAN_HOST = 'dashboard.test';
const chromiumArgs = (netLog: string) => [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Chromium still asks Google's hosts for updates and accounts: every name but ours resolves to
  // nothing, so no lookup or connection leaves this machine.
  `--host-resolver-rules=MAP ${LAN_HOST} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1`,
  `--log-net-log=${netLog}`,
];

const PRODUCT_VERSION = 'v1.44.0';
const MACHINE_ROOT = { 'etc/machine-id': '0f1e2d3c4b5a69788796a5b4c3d2e1f0\n' };
const PAGE_CONSTANTS = { $current_url: 'https://dashboard.invalid/', $host: 'dashboard.invalid', $pathname: '/' };
const NO_STORAGE = { cookie: '', localStorage: 0, sessionStorage: 0, indexedDB: 0, cacheStorage: 0, cookies: 0 };

test('Chromium is there for the browser suite (CI fails without it; elsewhere the suite is skipped)', { skip: missing && !IN_CI ? `${missing}: the browser suite is skipped` : false }, () => {
  assert.equal(missing, undefined, missing);
});

describe('the dashboard module in headless Chromium', { skip: missing !== undefined, timeout: 120_000 }, () => {
  let browser: Browser;
  let pages: PageServer;
  let netLog: string;
  let workDir: string;
  /** Every endpoint a case started, so the final network check can account for all requests. */
  const endpoints: Endpoint[] = [];
  /** Sends the offline case saw refused: no endpoint logged them, the browser's log has them. */
  let refusedAttempts = 0;

  before(async () => {
    workDir = mkdtempSync(path.join(os.tmpdir(), 'anon-stats-browser-'));
    netLog = path.join(workDir, 'netlog.json');
    pages = await startPageServer(MODULE_FILE);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs(netLog) });
  });
  after(async () => {
    await browser?.close();
    await pages?.close();
    rmSync(workDir, { recursive: true, force: true });
  });

  async function tracked(t: TestContext, ...args: Parameters<typeof endpoint>[1][]): Promise<Endpoint> {
    const server = await endpoint(t, ...args);
    endpoints.push(server);
    return server;
  }

  /** What the real built file's `consent` command prints for this endpoint and these opt-outs. */
  async function consentText(t: TestContext, endpointUrl: string, optOut: { args?: string[]; env?: Record<string, string>; marker?: boolean } = {}): Promise<string> {
    const dirs = tempDir(t);
    const configDir = path.join(dirs, 'config');
    mkdirSync(configDir);
    if (optOut.marker) writeFileSync(path.join(configDir, '.opt-out-from-anonymous-statistics'), '');
    const args = ['consent', '--endpoint', endpointUrl, '--config-dir', configDir, '--state-dir', path.join(dirs, 'state'), '--root', makeRoot(t, MACHINE_ROOT), '--product-version', PRODUCT_VERSION];
    const result = await runBundle([...args, ...(optOut.args ?? [])], optOut.env);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout;
  }

  interface Dashboard {
    page: Page;
    context: BrowserContext;
    origin: string;
    route: string;
    /** "METHOD URL" of every request the context saw, in order. */
    seen: string[];
    errors: string[];
    log: () => Promise<string[]>;
  }

  interface Where {
    host?: string;
    initScript?: string;
    /** Another browser's context (and the page server that browser's network log is checked against). */
    context?: BrowserContext;
    server?: PageServer;
  }

  async function openDashboard(t: TestContext, page: PageOptions, { host = '127.0.0.1', initScript, context, server = pages }: Where = {}): Promise<Dashboard> {
    const browserContext = context ?? (await browser.newContext());
    if (!context) t.after(() => browserContext.close());
    if (initScript) await browserContext.addInitScript(initScript);
    const seen: string[] = [];
    const errors: string[] = [];
    browserContext.on('request', (request) => seen.push(`${request.method()} ${request.url()}`));
    const tab = await browserContext.newPage();
    tab.on('pageerror', (error) => errors.push(String(error)));
    const route = server.add(dashboardPage(page));
    const origin = `http://${host}:${server.port}`;
    await tab.goto(`${origin}${route}`);
    await tab.waitForFunction(() => 'telemetry' in window);
    return { page: tab, context: browserContext, origin, route, seen, errors, log: () => tab.evaluate(() => (window as unknown as { telemetryLog: string[] }).telemetryLog) };
  }

  /**
   * Leaves the dashboard the way a person does (its real pagehide fires), then requests the
   * barrier from the next page: whatever the dashboard sent on its way out was issued before.
   */
  async function leave(dashboard: Dashboard): Promise<void> {
    await dashboard.page.goto(`${dashboard.origin}${BLANK_PATH}`);
    await dashboard.page.evaluate((barrier) => fetch(barrier).then(() => undefined), BARRIER_PATH);
  }

  /** Read on the dashboard's own origin (the blank page after leave() shares it). */
  async function storage(dashboard: Dashboard) {
    const inPage = await dashboard.page.evaluate(async () => ({
      cookie: document.cookie,
      localStorage: localStorage.length,
      sessionStorage: sessionStorage.length,
      indexedDB: (await indexedDB.databases()).length,
      cacheStorage: 'caches' in self ? (await caches.keys()).length : 0,
    }));
    return { ...inPage, cookies: (await dashboard.context.cookies()).length };
  }

  const silentRequests = (d: Dashboard) => [`GET ${d.origin}${d.route}`, `GET ${d.origin}${MODULE_PATH}`, `GET ${d.origin}${BLANK_PATH}`, `GET ${d.origin}${BARRIER_PATH}`];

  async function assertSilent(d: Dashboard, server: Endpoint, reason: RegExp): Promise<void> {
    await d.page.evaluate(() => {
      const telemetry = (window as unknown as { telemetry: { action(name: string): void; pageview(name: string): void } }).telemetry;
      telemetry.action('open alerts');
      telemetry.pageview('nodes');
    });
    const log = await d.log();
    await leave(d);
    assert.deepEqual(d.seen, silentRequests(d), 'the page requested nothing but itself, the module and the barrier');
    assert.equal(server.requests.length, 0, 'the endpoint received nothing');
    assert.deepEqual(await storage(d), NO_STORAGE);
    assert.deepEqual(d.errors, []);
    assert.equal(log.length, 1, log.join('\n'));
    assert.match(log[0], reason);
  }

  it('opted in, on a LAN-style page: the pageview and a scrubbed action leave in one keepalive batch as the page is left', async (t) => {
    const server = await tracked(t, { kind: 'accept', headers: { 'set-cookie': 'tracker=1; Path=/; Max-Age=3600' } });
    const consent = await consentText(t, server.url);
    const d = await openDashboard(t, { consent, options: { flushAfterMs: 60_000 } }, { host: LAN_HOST });
    assert.equal(await d.page.evaluate(() => isSecureContext), false, 'plain http on a name: crypto.randomUUID() is not there');
    await d.page.evaluate((host) => {
      const telemetry = (window as unknown as { telemetry: { action(name: unknown): void; pageview(name: unknown): void } }).telemetry;
      telemetry.action(`restart collector on ${host} for admin@example.com at 10.1.2.3 from /home/alice/netdata and https://x.test/?token=abc`);
      // Not names: ignored, and never thrown into the page.
      telemetry.pageview(undefined);
      telemetry.action(42);
      telemetry.action('   ');
    }, LAN_HOST);
    assert.equal(server.requests.length, 0, 'nothing before the flush timer or the page being left');
    await leave(d);
    await server.received(1);

    assert.equal(server.requests.length, 1);
    const [request] = server.requests;
    assert.deepEqual([request.method, request.path, request.status], ['POST', '/batch/', 200]);
    assert.equal(request.headers.referer, undefined, 'no Referer');
    assert.equal(request.headers.cookie, undefined, 'no Cookie');
    assert.equal(request.headers['content-type'], 'text/plain;charset=UTF-8', 'a simple request: no CORS preflight');
    // The browser adds the page's origin to any cross-origin POST (Firefox sends "null" under
    // no-referrer, as the Fetch standard says; Chromium does not): never more than the origin.
    assert.ok(request.headers.origin === 'null' || request.headers.origin === d.origin, String(request.headers.origin));

    const body = JSON.parse(request.body);
    const parsedConsent = JSON.parse(consent);
    assert.deepEqual(Object.keys(body), ['api_key', 'sent_at', 'batch']);
    assert.equal(body.api_key, parsedConsent.api_key);
    assert.ok(Math.abs(Date.parse(body.sent_at) - Date.now()) < 60_000);
    const shared = {
      distinct_id: parsedConsent.distinct_id,
      $ip: '127.0.0.1',
      $process_person_profile: false,
      ...PAGE_CONSTANTS,
      product: 'example-daemon',
      product_version: PRODUCT_VERSION,
      schema_version: parsedConsent.schema_version,
    };
    assert.deepEqual(
      body.batch.map((event: Record<string, unknown>) => [event.event, event.properties]),
      [
        ['$pageview', { ...shared, dashboard_page: 'overview' }],
        ['dashboard_action', { ...shared, dashboard_action: 'restart collector on <host> for <email> at <ip> from <path>/netdata and <url>' }],
      ],
    );
    for (const event of body.batch) {
      assert.deepEqual(Object.keys(event), ['event', 'uuid', 'timestamp', 'properties']);
      assert.match(event.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.ok(Math.abs(Date.parse(event.timestamp) - Date.now()) < 60_000);
    }
    assert.equal(server.events().length, 2, 'the endpoint accepted both by PostHog rules');
    assert.deepEqual(await storage(d), NO_STORAGE, 'the endpoint set a cookie; the browser kept none');
    assert.deepEqual(d.errors, []);
    // The keepalive request outlives the page, so the context no longer reports it (the final
    // network-log test does); everything it did report is the page, the module and the barrier.
    assert.deepEqual(d.seen, silentRequests(d));
  });

  it('opted in, on 127.0.0.1: the flush timer sends the pageview by itself', async (t) => {
    const server = await tracked(t);
    const consent = await consentText(t, server.url);
    const d = await openDashboard(t, { consent });
    assert.equal(await d.page.evaluate(() => isSecureContext), true);
    await server.received(1);
    assert.deepEqual(
      server.events().map((event) => [event.event, (event.properties as Record<string, unknown>).dashboard_page]),
      [['$pageview', 'overview']],
    );
    await leave(d);
    const [page, module, blank, barrier] = silentRequests(d);
    assert.deepEqual(d.seen, [page, module, `POST ${server.url}/batch/`, blank, barrier]);
    assert.deepEqual(await storage(d), NO_STORAGE);
    assert.deepEqual(d.errors, []);
  });

  const OPT_OUTS: [string, { args?: string[]; env?: Record<string, string>; marker?: boolean }][] = [
    ['--disable-telemetry', { args: ['--disable-telemetry'] }],
    ['DISABLE_TELEMETRY=1', { env: { DISABLE_TELEMETRY: '1' } }],
    ['DO_NOT_TRACK=0 (any value opts out)', { env: { DO_NOT_TRACK: '0' } }],
    ['the marker file', { marker: true }],
  ];
  for (const [name, optOut] of OPT_OUTS) {
    it(`opted out by ${name}: consent prints {"enabled":false} and the page requests nothing, stores nothing`, async (t) => {
      const server = await tracked(t);
      const consent = await consentText(t, server.url, optOut);
      assert.equal(consent, '{"enabled":false}\n');
      const d = await openDashboard(t, { consent, options: { flushAfterMs: 0 } });
      await assertSilent(d, server, /^anonymous-statistics: silent: telemetry is off on the host/);
    });
  }

  it('Global Privacy Control keeps a consenting page silent (Chromium has no GPC setting: the signal is set as Firefox and Brave expose it)', async (t) => {
    const server = await tracked(t);
    const consent = await consentText(t, server.url);
    const gpc = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true, configurable: true, enumerable: true });";
    const d = await openDashboard(t, { consent, options: { flushAfterMs: 0 } }, { initScript: gpc });
    await assertSilent(d, server, /^anonymous-statistics: silent: the browser sends Global Privacy Control$/);
  });

  it('with no consent document the page stays silent', async (t) => {
    const server = await tracked(t);
    const d = await openDashboard(t, { options: { flushAfterMs: 0 } });
    await assertSilent(d, server, /^anonymous-statistics: silent: no consent document$/);
  });

  it('a malformed consent document, or options that throw, keep it silent and never throw into the page', async (t) => {
    const server = await tracked(t);
    const consent = await consentText(t, server.url);
    const valid = JSON.parse(consent);
    const without = (key: string) => Object.fromEntries(Object.entries(valid).filter(([k]) => k !== key));
    const documents: [unknown, RegExp][] = [
      ['{not json', /is not JSON/],
      [consent.slice(0, consent.length / 2), /is not JSON/],
      [null, /no consent document/],
      [[valid], /no consent document/],
      [{ ...valid, enabled: 'true' }, /consent\.enabled is not true/],
      [{ ...valid, distinct_id: 'machine-1' }, /distinct_id/],
      [without('api_key'), /api_key is missing/],
      [{ ...valid, product: '' }, /product is missing/],
      [{ ...valid, schema_version: '1' }, /schema_version/],
      [without('endpoint'), /endpoint is missing/],
      [{ ...valid, endpoint: 'not a url' }, /endpoint is not a URL/],
      [{ ...valid, endpoint: 'http://telemetry.example.com/capture/' }, /endpoint uses http: for a non-loopback host/],
      [{ ...valid, endpoint: 'javascript:alert(1)' }, /endpoint must be an https: URL/],
      [{ ...valid, endpoint: 'https://user:secret@telemetry.example.com/' }, /endpoint must not carry credentials/],
    ];
    const d = await openDashboard(t, { options: { flushAfterMs: 0 } });
    // A string, not a function: tsx would wrap a function's inner functions in a helper the page lacks.
    const lines: string[] = await d.page.evaluate(`(async () => {
      const { startDashboardTelemetry } = await import(${JSON.stringify(MODULE_PATH)});
      const lines = [];
      const options = { flushAfterMs: 0, debug: (line) => lines.push(line) };
      const started = ${JSON.stringify(documents.map(([doc]) => doc))}.map((doc) => startDashboardTelemetry(doc, options));
      // A document whose every read throws, and options whose every read throws.
      const hostile = (what) => new Proxy({}, { get: () => { throw new Error('hostile ' + what); } });
      started.push(startDashboardTelemetry(hostile('document'), options));
      started.push(startDashboardTelemetry(${JSON.stringify(valid)}, hostile('options')));
      for (const telemetry of started) {
        telemetry.pageview('overview');
        telemetry.action('open alerts');
        telemetry.stop();
      }
      return lines;
    })()`);
    await leave(d);
    assert.equal(lines.length, documents.length + 1, lines.join('\n'));
    documents.forEach(([, reason], i) => assert.match(lines[i], new RegExp(`^anonymous-statistics: silent: .*${reason.source}`)));
    assert.match(lines[documents.length], /^anonymous-statistics: silent: Error: hostile document$/);
    assert.equal(server.requests.length, 0);
    assert.deepEqual(d.seen, silentRequests(d));
    assert.deepEqual(await storage(d), NO_STORAGE);
    assert.deepEqual(d.errors, []);
  });

  it('offline: a refused send neither throws nor grows the queue past its bound, and the newest events arrive once the endpoint is back', async (t) => {
    const down = await startEndpoint();
    const port = Number(new URL(down.url).port);
    await down.close();
    const consent = await consentText(t, down.url);
    const d = await openDashboard(t, { consent, options: { flushAfterMs: 0, maxQueued: 5 } });
    const actions = Array.from({ length: 7 }, (_, i) => `action ${i + 1}`);
    const newest = actions.slice(-5);
    d.context.on('requestfailed', () => (refusedAttempts += 1));
    const refused = d.context.waitForEvent('requestfailed', {
      predicate: (request) => JSON.stringify(JSON.parse(request.postData() ?? '{}').batch?.map((e: { properties: { dashboard_action?: string } }) => e.properties.dashboard_action)) === JSON.stringify(newest),
    });
    await d.page.evaluate((names) => {
      for (const name of names) (window as unknown as { telemetry: { action(name: string): void } }).telemetry.action(name);
    }, actions);
    const failed = await refused;
    assert.match(failed.failure()?.errorText ?? '', /ERR_CONNECTION_REFUSED/);
    const attempted = JSON.parse(failed.postData() ?? '{}').batch.map((event: { uuid: string }) => event.uuid);

    const server = await startEndpoint({ kind: 'accept' }, { port });
    endpoints.push(server);
    t.after(() => server.close());
    await server.received(1);
    assert.equal(server.requests.length, 1);
    const [delivered] = server.requests.map((request) => JSON.parse(request.body).batch);
    assert.deepEqual(delivered.map((event: { properties: { dashboard_action: string } }) => event.properties.dashboard_action), newest, 'the oldest were dropped');
    assert.deepEqual(delivered.map((event: { uuid: string }) => event.uuid), attempted, 'a retry sends the same events, uuids kept');
    const log = await d.log();
    assert.ok(log.some((line) => /dropped the \d+ oldest events: at most 5 are kept/.test(line)), log.join('\n'));
    assert.ok(log.some((line) => /not delivered \(TypeError: Failed to fetch\); 5 kept, next try in \d+ ms/.test(line)), log.join('\n'));
    assert.deepEqual(d.errors, []);
    assert.deepEqual(await storage(d), NO_STORAGE, 'the queue lives in memory only');
  });

  it('stop() drops what is queued: nothing more is sent, not even when the page is left', async (t) => {
    const server = await tracked(t);
    const consent = await consentText(t, server.url);
    const d = await openDashboard(t, { consent, options: { flushAfterMs: 60_000 } });
    await d.page.evaluate(() => {
      const telemetry = (window as unknown as { telemetry: { action(name: string): void; stop(): void } }).telemetry;
      telemetry.action('queued before stop');
      telemetry.stop();
      telemetry.action('after stop');
      telemetry.stop();
    });
    const log = await d.log();
    await leave(d);
    assert.equal(server.requests.length, 0);
    assert.deepEqual(d.seen, silentRequests(d));
    assert.ok(log.includes('anonymous-statistics: stopped: nothing more will be sent'), log.join('\n'));
    assert.deepEqual(d.errors, []);
  });

  it('stop() after a delivery: what came before arrived, nothing after it does', async (t) => {
    const server = await tracked(t);
    const consent = await consentText(t, server.url);
    const d = await openDashboard(t, { consent, options: { flushAfterMs: 0 } });
    await server.received(1);
    await d.page.evaluate(() => {
      const telemetry = (window as unknown as { telemetry: { action(name: string): void; stop(): void } }).telemetry;
      telemetry.stop();
      telemetry.action('after stop');
    });
    await leave(d);
    assert.deepEqual(server.events().map((event) => event.event), ['$pageview']);
    assert.equal(server.requests.length, 1);
  });

  it('Do Not Track, set in a real Chromium profile, keeps a consenting page silent', async (t) => {
    const profile = path.join(tempDir(t, 'anon-stats-dnt-'), 'profile');
    mkdirSync(path.join(profile, 'Default'), { recursive: true });
    // What "Send a Do Not Track request" in Chromium's settings writes.
    writeFileSync(path.join(profile, 'Default', 'Preferences'), JSON.stringify({ enable_do_not_track: true }));
    const dntLog = path.join(profile, '..', 'netlog.json');
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: chromiumArgs(dntLog) });
    const dntPages = await startPageServer(MODULE_FILE);
    t.after(() => dntPages.close());
    const server = await endpoint(t);
    try {
      const consent = await consentText(t, server.url);
      const d = await openDashboard(t, { consent, options: { flushAfterMs: 0 } }, { context, server: dntPages });
      assert.equal(await d.page.evaluate(() => navigator.doNotTrack), '1');
      await assertSilent(d, server, /^anonymous-statistics: silent: the browser sends Do Not Track$/);
    } finally {
      await context.close();
    }
    assertNetLogAccountsFor(dntLog, { pages: dntPages, endpoints: [server], refused: 0 });
  });

  it('the whole browser requested nothing but what the page server and the endpoints saw, and connected to 127.0.0.1 only', async () => {
    await browser.close();
    assertNetLogAccountsFor(netLog, { pages, endpoints, refused: refusedAttempts });
  });
});

interface NetLogEvent {
  type: number;
  source: { id: number };
  params?: Record<string, unknown>;
}

/**
 * Chromium's NetLog records every request the browser made, keepalive ones that outlive their
 * page included. Those made for our pages (their network isolation key is one of our origins)
 * must be exactly the requests the page server and the endpoints logged, plus the refused
 * sends; and no connection of any kind may have gone anywhere but 127.0.0.1.
 */
function assertNetLogAccountsFor(file: string, expected: { pages: PageServer; endpoints: Endpoint[]; refused: number }): void {
  const log = JSON.parse(readFileSync(file, 'utf8')) as { constants: { logEventTypes: Record<string, number> }; events: NetLogEvent[] };
  const type = log.constants.logEventTypes;
  const ours = new RegExp(`^http://(127\\.0\\.0\\.1|${LAN_HOST.replace('.', '\\.')}) `);
  const started = new Map<number, string>();
  const refusedSources = new Set<number>();
  for (const event of log.events) {
    if (event.type === type.TCP_CONNECT_ATTEMPT && event.params?.address !== undefined) assert.match(String(event.params?.address), /^127\.0\.0\.1:\d+$/, 'a connection left this machine');
    if (event.params?.net_error === -102) refusedSources.add(event.source.id); // ERR_CONNECTION_REFUSED
    if (event.type !== type.URL_REQUEST_START_JOB || !event.params || !ours.test(String(event.params.network_isolation_key))) continue;
    const url = new URL(String(event.params.url));
    assert.ok(url.hostname === '127.0.0.1' || url.hostname === LAN_HOST, `a page requested ${url.href}`);
    started.set(event.source.id, `${event.params.method} :${url.port}${url.pathname}`);
  }
  const answered = [...started].filter(([source]) => !refusedSources.has(source)).map(([, request]) => request);
  const logged = [
    ...expected.pages.requests.map((request) => request.replace(' ', ` :${expected.pages.port}`)),
    ...expected.endpoints.flatMap((server) => server.requests.map((request) => `${request.method} :${new URL(server.url).port}${request.path}`)),
  ];
  assert.deepEqual(answered.sort(), logged.sort(), 'every request our pages made is one a server logged, and the other way round');
  assert.equal(started.size - answered.length, expected.refused, 'refused sends');
}
