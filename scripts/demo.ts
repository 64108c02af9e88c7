/**
 * The main job, end to end: starts the local capture endpoint on 127.0.0.1, reports four events
 * through the compiled file exactly as a daemon's hooks would and a command's start and end as a
 * CLI tool would, prints what the endpoint received; then the dashboard channel: serves a dashboard page with the consent document the
 * compiled file prints, drives it once in headless Chromium where there is one, and prints what
 * the page sent. Nothing leaves this machine.
 *
 * Driving the page needs Chromium (CHROMIUM_PATH, default /usr/bin/chromium). Without it the demo
 * stops before doing anything, in one line, rather than show part of what it promises and exit 0;
 * with --keep-open a person drives the page instead, and the demo says so at the top.
 *
 *   npm run demo [-- --keep-open]     --keep-open: leave the page up for a person, until Ctrl-C
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { BLANK_PATH, dashboardPage, startPageServer } from './dashboard-page.ts';
import { describeEvent, startEndpoint, type Endpoint } from './endpoint.ts';

const BUNDLE = path.resolve(__dirname, '../dist/anonymous-statistics.js');
const EVENTS = [
  ['start'],
  ['fatal', '--process', 'demo-daemon', '--thread', 'MAIN', '--function', 'db_open', '--file', 'database/engine.c', '--line', '212', '--message', 'cannot allocate memory'],
  ['cloud-connect-fail', '--code', 'ECONNREFUSED', '--code', 'HTTP_503', '--message', 'cloud endpoint unreachable'],
  ['stop', '--exit-code', '1'],
  ['command-start', '--name', 'converge', '--option', 'dry-run', '--env-option', 'WERF_REPO'],
  ['command-end', '--execution-id', '"$ID"', '--exit-code', '0'],
];
/** Stands for the execution id that the last command-start printed, as a shell script keeps it. */
const EXECUTION_ID = '"$ID"';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** The telemetry variables of the shell running the demo must not silence it. */
const DEMO_ENV = { ...process.env, DO_NOT_TRACK: '', DISABLE_TELEMETRY: '' };

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'keep-open': { type: 'boolean' } } });
  const keepOpen = values['keep-open'] === true;
  const chromium = existsSync(CHROMIUM);
  if (!chromium && !keepOpen) {
    console.error(`npm run demo: no Chromium at ${CHROMIUM} to drive the dashboard page (apt-get install chromium, or set CHROMIUM_PATH); npm run demo -- --keep-open opens the page for you to drive instead`);
    process.exitCode = 1;
    return;
  }
  if (!chromium) console.log(`no Chromium at ${CHROMIUM}: the dashboard page will wait for you to open it (--keep-open)\n`);
  const endpoint = await startEndpoint();
  const dirs = mkdtempSync(path.join(os.tmpdir(), 'anon-stats-demo-'));
  try {
    console.log(`local capture endpoint on ${endpoint.url}\n`);
    let executionId = '';
    for (const args of EVENTS) {
      const command = [BUNDLE, ...args.map((a) => (a === EXECUTION_ID ? executionId : a)), '--endpoint', endpoint.url, '--product-version', 'v1.44.0', '--config-dir', dirs, '--state-dir', dirs];
      const shown = `node dist/anonymous-statistics.js ${args.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ')} --endpoint ${endpoint.url} ...`;
      console.log(args[0] === 'command-start' ? `$ ID=$(${shown})` : `$ ${shown}`);
      // Asynchronous, so this process's endpoint can answer while the child waits on it.
      const { stdout, stderr } = await promisify(execFile)(process.execPath, command, { env: DEMO_ENV });
      process.stderr.write(stderr);
      if (args[0] === 'command-start') executionId = stdout.trim();
    }
    const events = endpoint.events();
    console.log(`\nthe endpoint received ${events.length} events in ${endpoint.requests.length} requests:`);
    for (const event of events) console.log(describeEvent(event));
    const [first] = events;
    if (first) console.log(`\nfull payload of the first event:\n${JSON.stringify(first, null, 2)}`);
    if (events.length !== EVENTS.length) {
      console.error(`expected ${EVENTS.length} events; is telemetry opted out on this machine? (anonymous-statistics status)`);
      process.exitCode = 1;
    }
    await dashboardChannel(endpoint, dirs, chromium, keepOpen);
  } finally {
    await endpoint.close();
    rmSync(dirs, { recursive: true, force: true });
  }
}

/** A daemon's web page, under the same consent: what it sends, and that a person sees nothing of it. */
async function dashboardChannel(endpoint: Endpoint, dirs: string, chromium: boolean, keepOpen: boolean): Promise<void> {
  const args = ['consent', '--endpoint', endpoint.url, '--product-version', 'v1.44.0', '--config-dir', dirs, '--state-dir', dirs];
  const { stdout: consent } = await promisify(execFile)(process.execPath, [BUNDLE, ...args], { env: DEMO_ENV });
  console.log(`\n--- the dashboard channel ---\n$ node dist/anonymous-statistics.js ${args.join(' ')}\n${consent}`);
  const pages = await startPageServer();
  try {
    const url = `${pages.origin}${pages.add(dashboardPage({ consent }))}`;
    console.log(`a dashboard page with that document inlined, and dist/anonymous-statistics-dashboard.js beside it:\n  ${url}\n`);
    const before = endpoint.requests.length;
    if (chromium) {
      await driveOnce(url, `${pages.origin}${BLANK_PATH}`);
      const arrived = () => endpoint.requests.slice(before).flatMap((request) => request.events);
      // The pageview and the click, in one batch or two (the flush timer may fall between them).
      while (arrived().length < 2) await endpoint.received(endpoint.requests.length + 1);
      const sent = arrived();
      console.log(`headless Chromium opened it, clicked "Open alerts" and left; the endpoint received ${sent.length} events:`);
      for (const event of sent) console.log(describeEvent(event));
      if (sent[0]) console.log(`\nfull payload of the first one:\n${JSON.stringify(sent[0], null, 2)}`);
    }
    if (keepOpen) {
      console.log(`\nthe page stays up at ${url}: each button there sends an event; Ctrl-C to stop`);
      let shown = endpoint.requests.length;
      const timer = setInterval(() => {
        for (const request of endpoint.requests.slice(shown)) for (const event of request.events) console.log(describeEvent(event));
        shown = endpoint.requests.length;
      }, 200);
      await new Promise<void>((resolve) => process.once('SIGINT', resolve));
      clearInterval(timer);
    }
  } finally {
    await pages.close();
  }
}

/** Loads the page, clicks one button, and leaves it (its pagehide sends what is queued). */
async function driveOnce(url: string, elsewhere: string): Promise<void> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(url);
    await page.click('text=Open alerts');
    await page.goto(elsewhere);
  } finally {
    await browser.close();
  }
}

void main();
