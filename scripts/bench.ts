/**
 * `npm run bench`: wall time and peak memory of the compiled file on the production path, each
 * as a ratio to a floor measured in the same run: a bare `node -e 0`; the least a Node POST costs
 * (bench-references/node-post.cjs) over https: and http:, and over https: at a 20 ms round trip;
 * and the least a flush of the outbox must do (bench-references/flush-floor.cjs). The goals are
 * issue 17's (GOAL, MEMORY_GOAL).
 *
 * - The receiver (bench-references/receiver.cjs) runs in a process of its own, so the timing
 *   process does no server work while a run is timed. Its https: certificate comes from a test CA
 *   made with openssl at bench start; the product and the https: floors trust it the same way,
 *   through NODE_EXTRA_CA_CERTS. That variable makes Node build its root store at start-up: a
 *   process that talks https: builds it anyway (the floors show both), so every https: row,
 *   flush included, is divided by an https: floor run with the variable.
 * - The 20 ms round trip: bench-references/delay-forwarder.cjs, a TCP forwarder on 127.0.0.1 in a
 *   process of its own, holds every chunk 10 ms in each direction on its way to and from the
 *   https: receiver. The product's --endpoint and the floor's URL name the forwarder's port
 *   directly (no proxy protocol: TLS runs end to end). The receiver's certificate names IP
 *   127.0.0.1, which holds on any port of it, so both still verify it.
 * - The delay line, as root (otherwise its two rows are "not available", with the reason):
 *   bench-references/delay-line.c, built with gcc, holds every IP packet 50 ms each way between
 *   two TUN devices, the far one in a network namespace of the bench's own with a receiver of its
 *   own at 10.231.87.2. Unlike the forwarder it delays the TCP handshake too, as a real network
 *   does, so what a run overlaps with its connection shows. `start` (given a key: the example
 *   build sends its placeholder key only to loopback) is divided by the https floor through it.
 * - flush's floor reads the same 1,000 files flush reads (<state>/outbox/new/), parses them,
 *   gzips them as one PostHog /batch/ request and POSTs it; the receiver counts the events.
 * - Every run gets a minimal environment (PATH, plus what the row needs) and its own state dir,
 *   copied untimed from one that a single `start` left, so no run sees another's crash-loop
 *   count, back-off or queue.
 * - Rounds are interleaved: every row once per round, in a new random order, so machine noise
 *   hits them all alike. A ratio is the median of the per-round ratios (row / its floor in the
 *   same round). Peak memory is measured in separate untimed rounds (see `peakKiB`).
 * - Each run is checked untimed (exit code, events the receiver got, nothing sent when opted
 *   out); a row whose runs do not do their work is reported "not available", not timed.
 *
 * --node VERSION (repeatable, or a comma list) runs every row, floors included, with that Node,
 * fetched once into the cache of scripts/node-versions.ts (`npm pack` from the npm registry);
 * without it, with the Node that runs the bench. Each round holds the rows of every version, and
 * a row is divided by its floor on the same Node. The helpers (receiver, forwarder) stay on the
 * bench's own Node.
 *
 * --shell-original FILE adds the hand-rolled shell script this product replaces, run with the
 * same receiver, and divides `start, https` by it. Netdata's daemon/anonymous-statistics.sh.in
 * posted to PostHog up to v1.39.1 (v1.40 moved to a Cloud Function); to get it:
 *   curl -fsSLo /tmp/anonymous-statistics.sh \
 *     https://raw.githubusercontent.com/netdata/netdata/v1.39.1/daemon/anonymous-statistics.sh.in
 * The bench copies FILE into its temp dir and rewrites the copy: its PostHog URL names the
 * receiver, PostHog's `$host` property (a name shown in PostHog, never contacted) becomes
 * 127.0.0.1, and its curl trusts the system's roots plus the test CA, as Node does with
 * NODE_EXTRA_CA_CERTS. It refuses to run the copy (the row is "not available") while any other
 * http(s) URL or host name remains in it. None of that script is in this repository.
 * --shell-system-info FILE adds what that script took its facts from: Netdata's
 * daemon/system-info.sh of the same version, which the daemon ran at its start and whose
 * NAME=value lines it put in its environment before calling the script (get_system_info() in
 * daemon/main.c). The row then times both, as one start of the shell original was:
 *   curl -fsSLo /tmp/system-info.sh \
 *     https://raw.githubusercontent.com/netdata/netdata/v1.39.1/daemon/system-info.sh
 * Its copy gets a curl that fails at once, so its cloud detection (instance metadata at
 * 169.254.169.254 and metadata.google.internal, on a VM) asks nothing of any other host; that
 * leaves out up to 1 s a real VM outside a cloud waits there, in the original's favour. It
 * refuses to run a copy that names another network tool.
 *
 * It reports goals and never fails on them: it exits non-zero only when the bench itself broke.
 * Targets only 127.0.0.1 and the network namespace it made; stops by itself; leaves no process,
 * namespace or temp dir behind.
 *
 *   npm run bench [-- --rounds 30] [--memory-rounds 5] [--json FILE] [--bundle FILE]
 *                    [--node 18.19.0,20.20.2 ...] [--shell-original FILE [--shell-system-info FILE]]
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { fetchNode, nodeBinary } from './node-versions.ts';

/** What `npm run bench` builds; --bundle measures another build (an older one, to compare). */
const BUILT = path.resolve(__dirname, '../dist/anonymous-statistics.js');
const REFERENCES = path.join(__dirname, 'bench-references');
/** Debian's `time` package: it reads the child's peak RSS from wait4(), outside the child. */
const GNU_TIME = '/usr/bin/time';
/** Where Debian's curl finds the roots it trusts; the shell original's curl gets them and the test CA. */
const SYSTEM_ROOTS = '/etc/ssl/certs/ca-certificates.crt';
const QUEUED_FOR_FLUSH = 1000;
/** The far-away receiver: the forwarder holds every chunk half of it in each direction. */
const ROUND_TRIP_MS = 20;
/** The receiver across the delay line (a receiver across an ocean): every packet, handshakes included. */
const LINE_ROUND_TRIP_MS = 100;
/** The delay line's point-to-point link: the bench's end, and the far end in its network namespace. */
const LINE_ADDRESSES = { near: '10.231.87.1', far: '10.231.87.2' };

/** Issue 17's column: each row's median per-round ratio to its floor, at most. */
const GOAL = {
  /** start, stop, command-start, command-end over https, to a bare node:https POST. */
  https: 1.15,
  /** start at a 20 ms round trip, to a bare node:https POST through the same forwarder. */
  farAway: 1.03,
  /** start and command-start opted out, to node -e 0. */
  optedOut: 1.05,
  /** start --background, the caller, to node -e 0. */
  background: 1.25,
  /** flush of 1,000 events, to reading, gzipping and posting them by hand. */
  flush: 1.3,
  /** start over https, to the shell original doing the same. */
  shellOriginal: 0.5,
};
/** Issue 17's column: peak RSS at most this many times the floor's. */
const MEMORY_GOAL = { eventCommand: 1.08, flush: 1.15 };
/** A run still going after this has hung: its row is reported broken. */
const RUN_LIMIT_MS = 30_000;
/** --background's detached child gives up on the hanging receiver after this. */
const BACKGROUND_TIMEOUT_MS = 300;
/** A detached child still alive this long after its caller ignored its timeout. */
const SETTLE_LIMIT_MS = 10_000;

type Env = Record<string, string>;
type Server = 'https' | 'http' | 'hanging';
type Counts = Record<Server, { requests: number; events: number }>;

/** A process of the bench's own (receiver, forwarder), answering over IPC. */
interface Helper {
  pid: number;
  /** Sends a message and waits for the answer; rejects if the helper died. One at a time. */
  ask<T>(message: unknown): Promise<T>;
  stop(): void;
}

interface Receiver {
  pid: number;
  urls: Record<Server, string>;
  counts(): Promise<Counts>;
  stop(): void;
}

interface NodeUnderTest {
  /** As `node --version` prints it. */
  version: string;
  binary: string;
}

interface Comparison {
  floor: Row;
  goal?: number;
}

interface Row {
  name: string;
  /** The row this one is divided by; floors have none. */
  floor?: Row;
  /** Other rows worth dividing by, shown under this one, with a goal where one is set. */
  alsoVs?: Comparison[];
  /** At most this many times its floor's wall time (the median of per-round ratios). */
  timeGoal?: number;
  /** At most this many times its floor's peak RSS; set on the product's rows. */
  memoryGoal?: number;
  /** Wall ms, one per round. */
  times: number[];
  /** Peak RSS in KiB, one per memory round. */
  peaks: number[];
  unavailable?: string;
}

interface Run {
  /** The command and its arguments. */
  argv: string[];
  env: Env;
}

interface Outcome {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one command, recording what the mode measures (wall ms, peak KiB, or nothing) in row. */
type Measure = (row: Row, run: Run) => Outcome;

/** One or more rows played together each round (command-end needs command-start's id). */
interface Unit {
  rows: Row[];
  play(measure: Measure): Promise<void>;
}

/** A row whose run did not do its work: reported, never timed further. */
class RowBroken extends Error {
  constructor(
    readonly row: Row,
    reason: string,
  ) {
    super(reason);
  }
}

const row = (name: string, floor?: Row, timeGoal?: number): Row => ({ name, floor, timeGoal, times: [], peaks: [] });
/** A row of an event command of the compiled file: all share one memory goal. */
const eventRow = (name: string, floor: Row, timeGoal?: number): Row => ({ ...row(name, floor, timeGoal), memoryGoal: MEMORY_GOAL.eventCommand });

// ---------------------------------------------------------------------------------------------
// Set-up: test CA, receiver, forwarder, shell original, template state dirs

function makeTestCa(dir: string): { caFile: string; key: string; cert: string } {
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const oneDay = ['-days', '1', '-nodes'];
  openssl('req', '-x509', '-newkey', 'rsa:2048', ...oneDay, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-subj', '/CN=anonymous-statistics bench CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  openssl('req', '-newkey', 'rsa:2048', ...oneDay, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1');
  // The names clients check: IP addresses, so any port of 127.0.0.1 (the forwarder's too) verifies,
  // and the far end of the delay line.
  writeFileSync(file('server.ext'), `subjectAltName=IP:127.0.0.1,IP:${LINE_ADDRESSES.far}\nextendedKeyUsage=serverAuth\n`);
  execFileSync('openssl', ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-set_serial', '1', '-days', '1', '-out', file('server.pem'), '-extfile', file('server.ext')], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { caFile: file('ca.pem'), key: file('server.key'), cert: file('server.pem') };
}

/** Starts bench-references/<script> (after `prefix`: `ip netns exec NS`) and waits for its answer to `hello`. */
async function startHelper<T>(script: string, hello: unknown, what: string, prefix: string[] = []): Promise<{ helper: Helper; ready: T }> {
  const [command, ...args] = [...prefix, process.execPath, path.join(REFERENCES, script)];
  const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { PATH: process.env.PATH ?? '' } });
  // Every wait on the helper also waits on this, so a helper that died is an error, not a hang.
  const gone = new Promise<never>((_, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`the ${what} exited (${signal ?? code})`)));
  });
  gone.catch(() => {}); // its exit at the end of the bench is the normal one
  const helper: Helper = {
    pid: child.pid as number,
    async ask<R>(message: unknown): Promise<R> {
      child.send(message as object);
      const [reply] = (await Promise.race([once(child, 'message'), gone])) as [R];
      return reply;
    },
    stop: () => void child.kill(),
  };
  const patience = new AbortController();
  try {
    const late = delay(10_000, undefined, { signal: patience.signal }).then(() => Promise.reject(new Error(`the ${what} was not ready within 10 s`)));
    late.catch(() => {}); // aborted once the helper answered
    return { helper, ready: await Promise.race([helper.ask<T>(hello), late]) };
  } catch (error) {
    helper.stop();
    throw error;
  } finally {
    patience.abort();
  }
}

async function startReceiver(tls: { key: string; cert: string }, host = '127.0.0.1', prefix: string[] = []): Promise<Receiver> {
  const { helper, ready } = await startHelper<{ ports: Record<Server, number> }>('receiver.cjs', { ...tls, host }, 'receiver', prefix);
  const url = (scheme: string, port: number) => `${scheme}://${host}:${port}`;
  return {
    pid: helper.pid,
    urls: { https: url('https', ready.ports.https), http: url('http', ready.ports.http), hanging: url('http', ready.ports.hanging) },
    counts: async () => (await helper.ask<{ received: Counts }>('counts')).received,
    stop: helper.stop,
  };
}

/** The https: receiver at ROUND_TRIP_MS: its URL, https://127.0.0.1:<the forwarder's port>. */
async function startForwarder(receiver: Receiver): Promise<Helper & { url: string }> {
  const hello = { port: Number(new URL(receiver.urls.https).port), holdMs: ROUND_TRIP_MS / 2 };
  const { helper, ready } = await startHelper<{ port: number }>('delay-forwarder.cjs', hello, 'delay forwarder');
  return { ...helper, url: `https://127.0.0.1:${ready.port}` };
}

/** The receiver across the delay line, or why there is none. */
/** `pids`: its processes (the line and the receiver), which the end of the bench must not take for a run's leftovers. */
type AcrossTheLine = { receiver: Receiver; pids: number[]; stop(): void } | { refused: string };

/**
 * A receiver LINE_ROUND_TRIP_MS away, handshakes included: bench-references/delay-line.c (built
 * with gcc) between two TUN devices, the far one in a network namespace of the bench's own with
 * a receiver of its own. Needs root; everything it made goes in stop().
 */
async function startDelayLine(dir: string, tls: { key: string; cert: string }): Promise<AcrossTheLine> {
  if (process.getuid?.() !== 0) return { refused: 'needs root: a network namespace and TUN devices' };
  const run = (...args: string[]) => execFileSync(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  try {
    if (run('ip', '-o', 'addr', 'show').includes(LINE_ADDRESSES.near.replace(/\.\d+$/, '.'))) return { refused: `this machine already has an address in ${LINE_ADDRESSES.near}/24` };
  } catch (error) {
    return { refused: `cannot run ip (iproute2): ${(error as Error).message.split('\n')[0]}` };
  }
  const binary = path.join(dir, 'delay-line');
  try {
    run('gcc', '-O2', '-o', binary, path.join(REFERENCES, 'delay-line.c'));
  } catch (error) {
    return { refused: `cannot build the delay line with gcc: ${(error as Error).message.split('\n')[0]}` };
  }
  const namespace = `anon-stats-bench-${process.pid}`;
  const [near, far] = [`asb${process.pid % 100000}n`, `asb${process.pid % 100000}f`];
  const line = spawn(binary, [near, far, String(LINE_ROUND_TRIP_MS / 2)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const stopAll = (receiver?: Receiver) => {
    receiver?.stop();
    line.kill();
    try {
      run('ip', 'netns', 'delete', namespace);
    } catch {
      // never made
    }
  };
  try {
    const [said] = (await Promise.race([once(line.stdout, 'data'), once(line, 'exit').then(() => ['its exit'])])) as [Buffer | string];
    if (!String(said).startsWith('ready')) throw new Error(`the delay line did not start (${String(said).trim()})`);
    run('ip', 'netns', 'add', namespace);
    run('ip', 'link', 'set', far, 'netns', namespace);
    run('ip', 'addr', 'add', LINE_ADDRESSES.near, 'peer', LINE_ADDRESSES.far, 'dev', near);
    run('ip', 'link', 'set', near, 'up');
    run('ip', '-n', namespace, 'addr', 'add', LINE_ADDRESSES.far, 'peer', LINE_ADDRESSES.near, 'dev', far);
    run('ip', '-n', namespace, 'link', 'set', far, 'up');
    run('ip', '-n', namespace, 'link', 'set', 'lo', 'up');
    const receiver = await startReceiver(tls, LINE_ADDRESSES.far, ['ip', 'netns', 'exec', namespace]);
    return { receiver, pids: [receiver.pid, line.pid!], stop: () => stopAll(receiver) };
  } catch (error) {
    stopAll();
    return { refused: `cannot set the delay line up: ${(error as Error).message.split('\n')[0]}` };
  }
}

/** Any http(s) URL; and a dotted name ending in a label that starts with a letter (not an IP address). */
const ANY_URL = /https?:\/\/[^\s'"`<>()]+/gi;
const HOST_NAME = /\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]\b/gi;
const POSTHOG_ORIGIN = /https?:\/\/[a-z0-9.-]*posthog[a-z0-9.-]*(?::\d+)?(?=[/'"\s]|$)/gi;
/** PostHog's `$host` property, in a JSON text or a shell here-document (`\$host`). */
const HOST_PROPERTY = /("\\?\$host"\s*:\s*")[^"]*"/g;
/** A curl command given options: the call to make trust the test CA (`command -v curl` is not one). */
const CURL_CALL = /\bcurl(?=[ \t]+-)/g;

/** A network tool other than curl, or a shell's own TCP: what a system-info copy must not use. */
const OTHER_NETWORK_TOOL = /\b(?:wget|nc|ncat|netcat|socat|telnet|ssh|openssl\s+s_client)\b|\/dev\/(?:tcp|udp)\//;

/** The shell original's start, as the bench runs it. */
interface ShellOriginal {
  argv: string[];
}

/**
 * The shell original, copied into the bench's dir and rewritten to talk to the receiver only,
 * with its system-info.sh when given; or why it may not run.
 */
function prepareShellOriginal(file: string, systemInfoFile: string | undefined, dir: string, receiver: Receiver, caFile: string): ShellOriginal | { refused: string } {
  const original = prepareStatisticsScript(file, dir, receiver, caFile);
  if ('refused' in original) return original;
  // As netdata's daemon calls it at start; without system-info.sh, what it reads from the daemon's environment stays empty.
  if (systemInfoFile === undefined) return { argv: ['/bin/sh', original.script, 'START', '-', '-'] };
  const systemInfo = prepareSystemInfo(systemInfoFile, dir);
  if ('refused' in systemInfo) return systemInfo;
  const start = path.join(dir, 'shell-original-start.sh');
  // The daemon's get_system_info(): every NAME=value line of system-info.sh's output, set in the
  // environment the script then runs with. Values are never evaluated as shell.
  writeFileSync(
    start,
    [
      '#!/bin/sh',
      'while IFS= read -r line; do',
      '  case "$line" in',
      '    NETDATA_*=*) export "${line%%=*}=${line#*=}" ;;',
      '  esac',
      'done <<FACTS',
      `$(/bin/sh '${systemInfo.script}')`,
      'FACTS',
      `exec /bin/sh '${original.script}' START - -`,
      '',
    ].join('\n'),
    { mode: 0o700 },
  );
  return { argv: ['/bin/sh', start] };
}

function readScript(file: string): string | { refused: string } {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    return { refused: `cannot read ${file}: ${(error as Error).message}` };
  }
}

/** system-info.sh, copied with a curl that fails at once (see --shell-system-info); or why it may not run. */
function prepareSystemInfo(file: string, dir: string): { script: string } | { refused: string } {
  const text = readScript(file);
  if (typeof text !== 'string') return text;
  if (!text.includes('NETDATA_SYSTEM_')) return { refused: `${file} prints no NETDATA_SYSTEM_ facts: not a system-info.sh` };
  const tool = OTHER_NETWORK_TOOL.exec(text)?.[0];
  if (tool) return { refused: `${file} uses ${tool}, which the bench cannot keep on this machine` };
  const script = path.join(dir, 'shell-original-system-info.sh');
  const noNetwork = '# npm run bench: no request leaves this machine (its cloud detection asks instance metadata services).\ncurl() { return 7; }\n';
  writeFileSync(script, text.startsWith('#!') ? text.replace(/^(#![^\n]*\n)/, `$1${noNetwork}`) : `${noNetwork}${text}`, { mode: 0o700 });
  return { script };
}

/**
 * anonymous-statistics.sh, copied into the bench's dir and rewritten to talk to the receiver
 * only; or why it may not run. Checked before the bench adds its own paths to it.
 */
function prepareStatisticsScript(file: string, dir: string, receiver: Receiver, caFile: string): { script: string } | { refused: string } {
  const text = readScript(file);
  if (typeof text !== 'string') return text;
  if (spawnSync('curl', ['--version'], { stdio: 'ignore' }).status !== 0) return { refused: 'curl is not installed, and the bench times the curl path' };
  if (!text.match(POSTHOG_ORIGIN)) return { refused: `no PostHog URL in ${file}` };
  const local = text.replace(POSTHOG_ORIGIN, receiver.urls.https).replace(HOST_PROPERTY, (_, before: string) => `${before}127.0.0.1"`);
  const otherUrl = (local.match(ANY_URL) ?? []).find((url) => !url.startsWith(`${receiver.urls.https}/`));
  if (otherUrl) return { refused: `it still names ${otherUrl}` };
  const hostName = local.match(HOST_NAME)?.[0];
  if (hostName) return { refused: `it still names the host ${hostName}` };
  if (!local.match(CURL_CALL)) return { refused: 'it has no curl call to make trust the test CA' };
  const roots = path.join(dir, 'shell-original-roots.pem');
  writeFileSync(roots, `${existsSync(SYSTEM_ROOTS) ? readFileSync(SYSTEM_ROOTS, 'utf8') : ''}\n${readFileSync(caFile, 'utf8')}`);
  const script = path.join(dir, 'shell-original.sh');
  writeFileSync(script, local.replace(CURL_CALL, `curl --cacert '${roots}'`), { mode: 0o700 });
  return { script };
}

// ---------------------------------------------------------------------------------------------
// Processes a run may leave behind (--background's detached child)

function processesMentioning(text: string, except: Set<number>): number[] {
  const mentions = (file: string) => {
    try {
      return readFileSync(file).includes(text);
    } catch {
      return false; // gone meanwhile, or not ours to read
    }
  };
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => !except.has(pid) && (mentions(`/proc/${pid}/cmdline`) || mentions(`/proc/${pid}/environ`)));
}

/**
 * Waits until no process names `marker` (a run's own dir) in its command line or environment,
 * which is how a detached child is known to be ours; kills the ones still there after
 * SETTLE_LIMIT_MS and returns their pids.
 */
async function settle(marker: string, except: Set<number>): Promise<number[]> {
  const deadline = Date.now() + SETTLE_LIMIT_MS;
  for (;;) {
    const pids = processesMentioning(marker, except);
    if (pids.length === 0) return [];
    if (Date.now() > deadline) {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // it ended meanwhile
        }
      }
      return pids;
    }
    await delay(10);
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring

function execute(run: Run, prefix: string[] = []): Outcome & { ms: number } {
  const [command, ...args] = [...prefix, ...run.argv];
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { env: run.env, stdio: ['ignore', 'pipe', 'pipe'], timeout: RUN_LIMIT_MS, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT') throw new Error(`did not finish within ${RUN_LIMIT_MS / 1000} s`);
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout.toString(), stderr: result.stderr.toString(), ms };
}

function guarded(row: Row, run: () => Outcome & { ms: number }): Outcome & { ms: number } {
  try {
    const outcome = run();
    if (outcome.status === null) throw new Error('was killed by a signal');
    return outcome;
  } catch (error) {
    throw new RowBroken(row, (error as Error).message);
  }
}

const untimed: Measure = (target, run) => guarded(target, () => execute(run));
const timed: Measure = (target, run) => {
  const outcome = guarded(target, () => execute(run));
  target.times.push(outcome.ms);
  return outcome;
};

/**
 * Peak RSS through GNU time, which reads it from the rusage wait4() returns for the child: it
 * covers the whole life of the process (the last page touched before exit included), adds
 * nothing to the child, and leaves out --background's detached child, which the caller does
 * not wait for. process.resourceUsage() in the bench would be the bench's own, and a hook
 * preloaded into the child would change what is measured.
 */
function peakKiB(dir: string): Measure {
  const report = path.join(dir, 'peak-rss');
  return (target, run) => {
    const outcome = guarded(target, () => execute(run, [GNU_TIME, '-f', '%M', '-o', report]));
    target.peaks.push(Number(readFileSync(report, 'utf8').trim().split('\n').pop()));
    return outcome;
  };
}

function hasGnuTime(): boolean {
  try {
    return execFileSync(GNU_TIME, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).includes('GNU');
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Rows

interface Bench {
  /** The compiled file measured. */
  bundle: string;
  dir: string;
  receiver: Receiver;
  /** The https: receiver through the delay forwarder, ROUND_TRIP_MS away. */
  farAwayUrl: string;
  /** The receiver across the delay line, LINE_ROUND_TRIP_MS away, or why there is none. */
  acrossTheLine: AcrossTheLine;
  /** The bench and its helpers: never a run's leftover. */
  ownPids: Set<number>;
  /** PATH only. */
  plainEnv: Env;
  /** PATH and NODE_EXTRA_CA_CERTS naming the test CA. */
  caEnv: Env;
  configDir: string;
  /** The floors' request body: about 2 KB, more than the product's `start` event. */
  body: string;
  /** --shell-original (with --shell-system-info), rewritten to talk to the receiver only, or why it may not run. */
  shellOriginal?: ShellOriginal | { refused: string };
}

/** What the rows on one Node start from. */
interface NodeSetup {
  node: NodeUnderTest;
  /** This Node's runs and template live here. */
  home: string;
  /** A state dir as one `start` over https on this Node left it. */
  template: string;
  /** The event `start --dry-run` printed, the model of the queued events `flush` sends. */
  sampleEvent?: Record<string, unknown>;
}

function floorBody(): string {
  const event = { api_key: 'phc_bench', event: 'start', uuid: randomUUID(), timestamp: new Date().toISOString(), properties: { distinct_id: randomUUID(), padding: '' } };
  event.properties.padding = 'x'.repeat(2048 - JSON.stringify(event).length);
  return JSON.stringify(event);
}

function prepareNode(bench: Bench, node: NodeUnderTest, index: number): NodeSetup {
  const home = path.join(bench.dir, `node-${index}`);
  const template = path.join(home, 'template');
  mkdirSync(template, { recursive: true, mode: 0o700 }); // as an installer leaves it, so a failed first run still leaves one
  const settings = ['--endpoint', bench.receiver.urls.https, '--state-dir', template, '--config-dir', bench.configDir];
  // The state every run starts from: what one `start` leaves, as on any machine after its first run.
  const first = execute({ argv: [node.binary, bench.bundle, 'start', ...settings], env: bench.caEnv });
  if (first.status !== 0) console.warn(`the template run of start on Node ${node.version} ${reasonOf(first)}`);
  const sample = execute({ argv: [node.binary, bench.bundle, 'start', '--dry-run', ...settings], env: bench.plainEnv });
  const sampleLine = sample.stdout.split('\n').find((line) => line.startsWith('{'));
  return { node, home, template, sampleEvent: sampleLine ? JSON.parse(sampleLine) : undefined };
}

function reasonOf(outcome: Outcome): string {
  const said = outcome.stderr.trim().split('\n')[0];
  return `exited ${outcome.status}${said ? `: ${said}` : ''}`;
}

function expectExit(target: Row, outcome: Outcome): void {
  if (outcome.status !== 0) throw new RowBroken(target, reasonOf(outcome));
}

async function expectEvents(receiver: Receiver, target: Row, before: Counts, server: Server, expected: number): Promise<void> {
  const got = (await receiver.counts())[server].events - before[server].events;
  if (got < expected) throw new RowBroken(target, `the receiver got ${got} of the ${expected} event(s) it should have`);
}

async function expectRequests(receiver: Receiver, target: Row, before: Counts, server: Server, expected: number): Promise<void> {
  const got = (await receiver.counts())[server].requests - before[server].requests;
  if (got < expected) throw new RowBroken(target, `the receiver got ${got} of the ${expected} request(s) it should have`);
}

async function expectNothingSent(receiver: Receiver, target: Row, before: Counts): Promise<void> {
  const after = await receiver.counts();
  const sent = (['https', 'http', 'hanging'] as const).reduce((sum, server) => sum + after[server].requests - before[server].requests, 0);
  if (sent > 0) throw new RowBroken(target, `sent ${sent} request(s) where it should send none`);
}

const EXECUTION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function expectExecutionId(target: Row, stdout = ''): string {
  const id = stdout.trim();
  if (!EXECUTION_ID.test(id)) throw new RowBroken(target, `printed ${JSON.stringify(id.slice(0, 80))}, not an execution id`);
  return id;
}

/** The outbox of the state dir (Maildir-style): one capture event per file in new/. */
function fillOutbox(stateDir: string, event: Record<string, unknown>): void {
  const outbox = path.join(stateDir, 'outbox');
  for (const folder of ['tmp', 'new', 'cur']) mkdirSync(path.join(outbox, folder), { recursive: true, mode: 0o700 });
  const oldest = Date.now() - QUEUED_FOR_FLUSH * 1000;
  for (let i = 0; i < QUEUED_FOR_FLUSH; i++) {
    const uuid = randomUUID();
    const at = oldest + i * 1000;
    const item = { ...event, uuid, timestamp: new Date(at).toISOString() };
    writeFileSync(path.join(outbox, 'new', `${String(at).padStart(13, '0')}-${uuid}.json`), JSON.stringify(item), { mode: 0o600 });
  }
}

/** One run of a unit played in one state dir. */
interface Step {
  target: Row;
  /** Made untimed, just before the run; `previous` is the outcome of the step before, if any. */
  run(stateDir: string, previous: Outcome | undefined): Run;
  /** Untimed, after the run exited 0. */
  check(outcome: Outcome, before: Counts, stateDir: string): Promise<void>;
}

/** A unit that always breaks at once: a row that cannot run, reported with its reason. */
const cannotRun = (rows: Row[], reason: string): Unit => ({
  rows,
  play: async () => {
    throw new RowBroken(rows[0], reason);
  },
});

function units(bench: Bench, setup: NodeSetup): { floors: Row[]; units: Unit[] } {
  const { receiver, plainEnv, caEnv, configDir } = bench;
  const { sampleEvent } = setup;
  const https = receiver.urls.https;
  let runs = 0;
  /** A state dir of the run's own, as the template left it (untimed). */
  const freshStateDir = () => {
    const dir = path.join(setup.home, 'runs', String(++runs));
    cpSync(setup.template, dir, { recursive: true });
    return dir;
  };
  const node = (...args: string[]) => [setup.node.binary, ...args];
  const reference = (script: string, ...args: string[]) => node(path.join(REFERENCES, script), ...args);
  const product = (command: string[], stateDir: string, endpoint: string) => node(bench.bundle, ...command, '--endpoint', endpoint, '--state-dir', stateDir, '--config-dir', configDir);

  const bareNode = row('node -e 0');
  const bareNodeCa = row('node -e 0, test CA env');
  const httpPost = row('node:http POST, 2 KB');
  const httpsPost = row('node:https POST, 2 KB');
  const farPost = row(`node:https POST, 2 KB, ${ROUND_TRIP_MS} ms RTT`);
  const linePost = row(`node:https POST, 2 KB, ${LINE_ROUND_TRIP_MS} ms RTT, delay line`);
  const httpsPostUnverified = row('node:https POST, 2 KB, no CA env, unverified');
  const flushFloor = row(`by hand: read, gzip, POST ${QUEUED_FOR_FLUSH.toLocaleString('en')} queued events, https`);
  const spawnOverhead = row('/bin/true (spawn overhead)');

  /** Rows played one after another in one fresh state dir, each run checked before the next against what `at` received. */
  const inOneStateDir = (steps: Step[], at = receiver): Unit => ({
    rows: steps.map((step) => step.target),
    async play(measure) {
      const stateDir = freshStateDir();
      try {
        let previous: Outcome | undefined;
        for (const { target, run, check } of steps) {
          const before = await at.counts();
          const outcome = measure(target, run(stateDir, previous));
          expectExit(target, outcome);
          await check(outcome, before, stateDir);
          previous = outcome;
        }
      } finally {
        rmSync(stateDir, { recursive: true, force: true });
      }
    },
  });
  const scenario = (target: Row, run: Step['run'], check: Step['check'], at = receiver): Unit => inOneStateDir([{ target, run, check }], at);
  const floor = (target: Row, run: () => Run): Unit => ({ rows: [target], play: async (measure) => expectExit(target, measure(target, run())) });

  const startHttps = eventRow('start, https', httpsPost, GOAL.https);
  // A daemon's stop follows its start, in the state that start left.
  const stopHttps = eventRow('stop, https', httpsPost, GOAL.https);
  const startFarAway = eventRow(`start, https, ${ROUND_TRIP_MS} ms RTT`, farPost, GOAL.farAway);
  const startAcrossTheLine = eventRow(`start, https, ${LINE_ROUND_TRIP_MS} ms RTT, delay line`, linePost);
  const startHttp = eventRow('start, http', httpPost);
  const optedOut = eventRow('start, opted out (DO_NOT_TRACK=1)', bareNode, GOAL.optedOut);
  const spawnDetached = row('reference: spawn a detached node -e 0, nothing else', bareNode);
  // Node's own floor for a caller: the goal is a ratio to node -e 0, this says how much of it Node takes.
  const background = { ...eventRow('start --background, receiver hanging', bareNode, GOAL.background), alsoVs: [{ floor: spawnDetached }] };
  const flush: Row = {
    ...row(`flush of ${QUEUED_FOR_FLUSH.toLocaleString('en')} queued events, https`, flushFloor, GOAL.flush),
    memoryGoal: MEMORY_GOAL.flush,
    // The floor it was divided by before it had one that does its work.
    alsoVs: [{ floor: bareNode }],
  };
  const dryRun = eventRow('start --dry-run', bareNode);
  const fatalDryRun = eventRow('fatal --dry-run, 120 KB message', bareNode);
  // Issue 10: a CLI calls these two around each command, so each must cost what `start` does.
  const commandStart = eventRow('command-start, https', httpsPost, GOAL.https);
  const commandEnd = eventRow('command-end, https', httpsPost, GOAL.https);
  const commandStartOptedOut = eventRow('command-start, opted out', bareNode, GOAL.optedOut);
  const shellOriginal = row('start, the shell original, https', httpsPost);
  if (bench.shellOriginal) startHttps.alsoVs = [{ floor: shellOriginal, goal: GOAL.shellOriginal }];
  const undici = row('reference: undici POST, https', httpsPost);

  const sends = (target: Row, server: Server = 'https', events = 1, at = receiver) => (_: Outcome, before: Counts) => expectEvents(at, target, before, server, events);
  /** Waits (untimed) for the run's detached child, found by the state dir on its command line or in its environment. */
  const detachedChildEnded = (target: Row) => async (_: Outcome, __: Counts, state: string) => {
    const killed = await settle(state, bench.ownPids);
    if (killed.length > 0) throw new RowBroken(target, `its detached child was still running ${SETTLE_LIMIT_MS / 1000} s later (killed ${killed.join(', ')})`);
  };
  const noSend = (target: Row) => (_: Outcome, before: Counts) => expectNothingSent(receiver, target, before);
  const commandStartArgs = ['command-start', '--name', 'converge', '--option', 'repo', '--option', 'dev', '--env-option', 'env'];

  const flushUnits = (): Unit[] => {
    if (!sampleEvent) return [cannotRun([flushFloor, flush], 'needs the event `start --dry-run` prints, and that run failed')];
    /** The same outbox for the floor and flush: 1,000 files in <state>/outbox/new/. */
    const queued = (stateDir: string) => {
      fillOutbox(stateDir, sampleEvent);
      return path.join(stateDir, 'outbox', 'new');
    };
    return [
      scenario(flushFloor, (state) => ({ argv: reference('flush-floor.cjs', queued(state), `${https}/batch/`), env: caEnv }), sends(flushFloor, 'https', QUEUED_FOR_FLUSH)),
      scenario(
        flush,
        (state) => {
          queued(state);
          return { argv: product(['flush', '--timeout', '10000'], state, https), env: caEnv };
        },
        (outcome, before) =>
          sends(flush, 'https', QUEUED_FOR_FLUSH)(outcome, before).catch((error: RowBroken) => {
            throw new RowBroken(flush, `${error.message} (written as files in <state>/outbox/new/; a build from before the outbox layout does not read them)`);
          }),
      ),
    ];
  };

  const shellUnits = (): Unit[] => {
    const prepared = bench.shellOriginal;
    if (!prepared) return [];
    if ('refused' in prepared) return [cannotRun([shellOriginal], prepared.refused)];
    const run = { argv: prepared.argv, env: plainEnv };
    return [
      {
        rows: [shellOriginal],
        async play(measure) {
          const before = await receiver.counts();
          expectExit(shellOriginal, measure(shellOriginal, run));
          await expectRequests(receiver, shellOriginal, before, 'https', 1);
        },
      },
    ];
  };

  const lineUnits = (): Unit[] => {
    const line = bench.acrossTheLine;
    if ('refused' in line) return [cannotRun([linePost, startAcrossTheLine], line.refused)];
    const url = line.receiver.urls.https;
    return [
      floor(linePost, () => ({ argv: reference('node-post.cjs', `${url}/capture/`, bench.body), env: caEnv })),
      // Not a loopback endpoint: the example build's placeholder key is refused there, so a key is given.
      scenario(startAcrossTheLine, (state) => ({ argv: product(['start'], state, url), env: { ...caEnv, TELEMETRY_API_KEY: 'phc_bench' } }), sends(startAcrossTheLine, 'https', 1, line.receiver), line.receiver),
    ];
  };

  const list: Unit[] = [
    floor(bareNode, () => ({ argv: node('-e', '0'), env: plainEnv })),
    floor(bareNodeCa, () => ({ argv: node('-e', '0'), env: caEnv })),
    floor(httpPost, () => ({ argv: reference('node-post.cjs', `${receiver.urls.http}/capture/`, bench.body), env: plainEnv })),
    floor(httpsPost, () => ({ argv: reference('node-post.cjs', `${https}/capture/`, bench.body), env: caEnv })),
    floor(farPost, () => ({ argv: reference('node-post.cjs', `${bench.farAwayUrl}/capture/`, bench.body), env: caEnv })),
    floor(httpsPostUnverified, () => ({ argv: reference('node-post.cjs', `${https}/capture/`, bench.body, 'unverified'), env: plainEnv })),
    // What starting and reaping any process costs the bench; it is inside every row's time.
    floor(spawnOverhead, () => ({ argv: ['/bin/true'], env: plainEnv })),
    ...flushUnits(),
    inOneStateDir([
      { target: startHttps, run: (state) => ({ argv: product(['start'], state, https), env: caEnv }), check: sends(startHttps) },
      { target: stopHttps, run: (state) => ({ argv: product(['stop'], state, https), env: caEnv }), check: sends(stopHttps) },
    ]),
    scenario(startFarAway, (state) => ({ argv: product(['start'], state, bench.farAwayUrl), env: caEnv }), sends(startFarAway)),
    ...lineUnits(),
    scenario(startHttp, (state) => ({ argv: product(['start'], state, receiver.urls.http), env: plainEnv }), sends(startHttp, 'http')),
    scenario(optedOut, (state) => ({ argv: product(['start'], state, https), env: { ...plainEnv, DO_NOT_TRACK: '1' } }), noSend(optedOut)),
    scenario(
      background,
      // The caller never connects, so plain http: keeps its environment that of `node -e 0`.
      (state) => ({ argv: product(['start', '--background', '--timeout', String(BACKGROUND_TIMEOUT_MS)], state, receiver.urls.hanging), env: plainEnv }),
      detachedChildEnded(background),
    ),
    scenario(
      spawnDetached,
      (state) => ({ argv: reference('spawn-detached.cjs', state), env: plainEnv }),
      detachedChildEnded(spawnDetached),
    ),
    scenario(dryRun, (state) => ({ argv: product(['start', '--dry-run'], state, https), env: plainEnv }), noSend(dryRun)),
    scenario(
      fatalDryRun,
      (state) => ({ argv: product(['fatal', '--process', 'bench', '--thread', 'main', '--message', 'a.'.repeat(60_000), '--dry-run'], state, https), env: plainEnv }),
      noSend(fatalDryRun),
    ),
    inOneStateDir([
      {
        target: commandStart,
        run: (state) => ({ argv: product(commandStartArgs, state, https), env: caEnv }),
        check: async (outcome, before) => {
          expectExecutionId(commandStart, outcome.stdout);
          await expectEvents(receiver, commandStart, before, 'https', 1);
        },
      },
      {
        target: commandEnd,
        run: (state, started) => ({ argv: product(['command-end', '--execution-id', expectExecutionId(commandStart, started?.stdout), '--exit-code', '0'], state, https), env: caEnv }),
        check: sends(commandEnd),
      },
    ]),
    scenario(commandStartOptedOut, (state) => ({ argv: product(commandStartArgs, state, https), env: { ...plainEnv, DO_NOT_TRACK: '1' } }), async (outcome, before) => {
      expectExecutionId(commandStartOptedOut, outcome.stdout);
      await expectNothingSent(receiver, commandStartOptedOut, before);
    }),
    ...shellUnits(),
    floor(undici, () => ({ argv: reference('undici-post.cjs', `${https}/capture/`, bench.body), env: caEnv })),
  ];
  const floors = [bareNode, bareNodeCa, httpPost, httpsPost, farPost, httpsPostUnverified, spawnOverhead, ...(sampleEvent ? [flushFloor] : []), ...('receiver' in bench.acrossTheLine ? [linePost] : [])];
  return { floors, units: list };
}

// ---------------------------------------------------------------------------------------------
// Rounds

function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}

/**
 * Plays every unit once, in the given order. A unit whose run did not do its work is reported
 * and dropped from later rounds; a floor that breaks breaks the bench, since every ratio needs it.
 */
async function playRound(order: Unit[], measure: Measure, floors: Row[], when: string): Promise<Unit[]> {
  const broken = new Set<Unit>();
  for (const unit of order) {
    try {
      await unit.play(measure);
    } catch (error) {
      if (!(error instanceof RowBroken)) throw error;
      if (floors.includes(error.row)) throw new Error(`floor "${error.row.name}" broke ${when}: ${error.message}`);
      broken.add(unit);
      for (const target of unit.rows) target.unavailable = target === error.row ? `${error.message} (${when})` : `not measured: "${error.row.name}" broke`;
    }
  }
  return order.filter((unit) => !broken.has(unit));
}

// ---------------------------------------------------------------------------------------------
// Statistics and report

interface Spread {
  median: number;
  p25: number;
  p75: number;
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const low = Math.floor(at);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (at - low);
}

const spread = (values: readonly number[]): Spread => ({ median: quantile(values, 0.5), p25: quantile(values, 0.25), p75: quantile(values, 0.75) });

interface RowResult {
  /** The Node it ran on. */
  node: string;
  name: string;
  floor?: string;
  unavailable?: string;
  ms?: Spread;
  ratio?: Spread;
  alsoVs?: { floor: string; ratio: Spread; goal?: number; goalMet?: boolean }[];
  timeGoal?: number;
  timeGoalMet?: boolean;
  peakMiB?: number;
  peakRatio?: number;
  memoryGoal?: number;
  memoryGoalMet?: boolean;
  samples: { ms: number[]; peakKiB: number[] };
}

function summarize(target: Row, node: string): RowResult {
  const result: RowResult = { node, name: target.name, floor: target.floor?.name, timeGoal: target.timeGoal, memoryGoal: target.memoryGoal, samples: { ms: target.times, peakKiB: target.peaks } };
  if (target.unavailable) return { ...result, unavailable: target.unavailable };
  result.ms = spread(target.times);
  const ratioTo = (floor: Row) => spread(target.times.map((ms, round) => ms / floor.times[round]));
  const { floor } = target;
  if (floor) {
    result.ratio = ratioTo(floor);
    if (target.timeGoal) result.timeGoalMet = result.ratio.median <= target.timeGoal;
  }
  // A row that broke has fewer rounds than this one: no ratio to it.
  const alsoVs = (target.alsoVs ?? []).filter((other) => !other.floor.unavailable);
  if (alsoVs.length > 0) {
    result.alsoVs = alsoVs.map(({ floor: other, goal }) => {
      const ratio = ratioTo(other);
      return { floor: other.name, ratio, goal, goalMet: goal === undefined ? undefined : ratio.median <= goal };
    });
  }
  if (target.peaks.length > 0) {
    const peak = quantile(target.peaks, 0.5);
    result.peakMiB = peak / 1024;
    if (floor && floor.peaks.length > 0) {
      result.peakRatio = peak / quantile(floor.peaks, 0.5);
      if (target.memoryGoal) result.memoryGoalMet = result.peakRatio <= target.memoryGoal;
    }
  }
  return result;
}

const verdict = (met: boolean | undefined) => (met === undefined ? '' : met ? 'met' : 'NOT met');
const times = (ratio: number) => `${ratio.toFixed(2)}x`;
const quartiles = (ratio: Spread) => `${ratio.p25.toFixed(2)}-${ratio.p75.toFixed(2)}`;

/** One table, a section per Node, so the columns line up across versions. */
function formatTable(sections: { node: NodeUnderTest; results: RowResult[] }[]): string {
  const header = ['row', 'vs', 'ms', 'p25-p75', 'ratio', 'p25-p75', 'goal', '', 'RSS MiB', 'ratio', 'goal', ''];
  const lines: (string[] | string)[] = [header];
  for (const { node, results } of sections) {
    lines.push('', `on Node ${node.version} (${node.binary})`);
    for (const r of results) {
      if (r.unavailable) {
        lines.push(`${r.name}: not available: ${r.unavailable}`);
        continue;
      }
      const { ms, ratio } = r as Required<Pick<RowResult, 'ms'>> & RowResult;
      lines.push([
        r.name,
        r.floor ?? '',
        ms.median.toFixed(1),
        `${ms.p25.toFixed(1)}-${ms.p75.toFixed(1)}`,
        ratio ? times(ratio.median) : '',
        ratio ? quartiles(ratio) : '',
        r.timeGoal ? times(r.timeGoal) : '',
        verdict(r.timeGoalMet),
        r.peakMiB === undefined ? '' : r.peakMiB.toFixed(1),
        r.peakRatio === undefined ? '' : times(r.peakRatio),
        r.memoryGoal && r.peakRatio !== undefined ? times(r.memoryGoal) : '',
        verdict(r.memoryGoalMet),
      ]);
      for (const other of r.alsoVs ?? []) {
        lines.push(['  the same runs', other.floor, '', '', times(other.ratio.median), quartiles(other.ratio), other.goal ? times(other.goal) : '', verdict(other.goalMet), '', '', '', '']);
      }
    }
  }
  const cells = lines.filter((line): line is string[] => Array.isArray(line));
  const widths = header.map((_, column) => Math.max(...cells.map((line) => line[column].length)));
  const leftAligned = 2; // name and floor; numbers are right-aligned
  return lines
    .map((line) => (typeof line === 'string' ? line : line.map((cell, column) => (column < leftAligned ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ').trimEnd()))
    .join('\n');
}

/**
 * --rows: the units that play a row whose name holds one of `names` (any case), and the units
 * that play the rows those are divided by. A unit is kept whole (`stop` runs in the state dir
 * `start` left).
 */
function unitsPlaying(all: Unit[], names: readonly string[]): Unit[] {
  const needed = new Set<Row>();
  const need = (target: Row) => {
    if (needed.has(target)) return;
    needed.add(target);
    if (target.floor) need(target.floor);
    for (const { floor } of target.alsoVs ?? []) need(floor);
  };
  const wanted = names.map((name) => name.toLowerCase());
  for (const target of all.flatMap((unit) => unit.rows)) if (wanted.some((name) => target.name.toLowerCase().includes(name))) need(target);
  if (needed.size === 0) throw new Error(`--rows: no row is named with ${names.map((name) => JSON.stringify(name)).join(' or ')}`);
  return all.filter((unit) => unit.rows.some((target) => needed.has(target)));
}

function positiveCount(text: string, option: string, min: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > 1000) throw new Error(`${option} must be a whole number from ${min} to 1000, got "${text}"`);
  return value;
}

/** --node's versions (repeated, or comma lists), fetched if this machine has not got them yet; by default the bench's own Node. */
function nodesUnderTest(requested: string[] = []): NodeUnderTest[] {
  const versions = [...new Set(requested.flatMap((item) => item.split(',')).map((item) => item.trim().replace(/^v/, '')).filter(Boolean))];
  if (versions.length === 0) return [{ version: process.version, binary: process.execPath }];
  return versions.map((version) => {
    if (!/^\d+\.\d+\.\d+$/.test(version)) throw new Error(`--node takes versions such as 18.19.0, got "${version}"`);
    const binary = nodeBinary(version);
    if (!existsSync(binary)) console.log(`fetching Node ${version} with npm pack`);
    fetchNode(version);
    const said = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
    if (said !== `v${version}`) throw new Error(`${binary} says it is ${said}, not v${version}`);
    return { version: said, binary };
  });
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '30' },
      'memory-rounds': { type: 'string', default: '5' },
      json: { type: 'string' },
      bundle: { type: 'string', default: BUILT },
      node: { type: 'string', multiple: true },
      'shell-original': { type: 'string' },
      'shell-system-info': { type: 'string' },
      rows: { type: 'string', multiple: true },
    },
  });
  const bundlePath = path.resolve(values.bundle);
  if (values['shell-system-info'] !== undefined && values['shell-original'] === undefined) throw new Error('--shell-system-info is what --shell-original took its facts from: give both');
  const rounds = positiveCount(values.rounds, '--rounds', 1);
  const gnuTime = hasGnuTime();
  const memoryRounds = gnuTime ? positiveCount(values['memory-rounds'], '--memory-rounds', 0) : 0;
  const nodes = nodesUnderTest(values.node);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'anon-stats-bench-'));
  const helpers: { stop(): void }[] = [];
  const abandon = () => {
    // Interrupted: nothing is waited for, everything the bench started is ended.
    for (const helper of helpers) helper.stop();
    for (const pid of processesMentioning(dir, new Set([process.pid]))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // it ended meanwhile
      }
    }
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', abandon).once('SIGTERM', abandon);
  try {
    const tls = makeTestCa(dir);
    const receiver = await startReceiver(tls);
    helpers.push(receiver);
    const forwarder = await startForwarder(receiver);
    helpers.push(forwarder);
    const acrossTheLine = await startDelayLine(dir, tls);
    if ('receiver' in acrossTheLine) helpers.push(acrossTheLine);
    const plainEnv: Env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    const configDir = path.join(dir, 'config');
    mkdirSync(configDir, { mode: 0o700 });
    const bench: Bench = {
      bundle: bundlePath,
      dir,
      receiver,
      farAwayUrl: forwarder.url,
      acrossTheLine,
      ownPids: new Set([process.pid, receiver.pid, forwarder.pid, ...('receiver' in acrossTheLine ? acrossTheLine.pids : [])]),
      plainEnv,
      caEnv: { ...plainEnv, NODE_EXTRA_CA_CERTS: tls.caFile },
      configDir,
      body: floorBody(),
      shellOriginal:
        values['shell-original'] === undefined
          ? undefined
          : prepareShellOriginal(path.resolve(values['shell-original']), values['shell-system-info'] && path.resolve(values['shell-system-info']), dir, receiver, tls.caFile),
    };

    const sections = nodes.map((node, index) => {
      const made = units(bench, prepareNode(bench, node, index));
      return { node, floors: made.floors, units: values.rows ? unitsPlaying(made.units, values.rows) : made.units };
    });
    const floors = sections.flatMap((section) => section.floors);
    const all = sections.flatMap((section) => section.units);
    const loadBefore = os.loadavg()[0];
    const startedAt = Date.now();
    // The first round is untimed: it fills the page cache and checks every row once.
    let active = await playRound(all, untimed, floors, 'in the untimed first round');
    for (let round = 1; round <= rounds; round++) active = await playRound(shuffled(active), timed, floors, `in round ${round}`);
    const memory = peakKiB(dir);
    for (let round = 1; round <= memoryRounds; round++) active = await playRound(shuffled(active), memory, floors, `in memory round ${round}`);
    const seconds = (Date.now() - startedAt) / 1000;
    const leftovers = await settle(dir, bench.ownPids);

    const tables = sections.map(({ node, units: played }) => ({ node, results: played.flatMap((unit) => unit.rows).map((target) => summarize(target, node.version)) }));
    const bundle = readFileSync(bundlePath);
    const versions = nodes.map((node) => node.version);
    const report = {
      date: new Date().toISOString(),
      /** The Node the rows ran on; the bench and its helpers ran on benchNode. */
      nodes,
      benchNode: process.version,
      platform: `${os.platform()} ${os.arch()}`,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadAverage: { before: loadBefore, after: os.loadavg()[0] },
      rounds,
      memoryRounds,
      seconds,
      bundle: { path: bundlePath, bytes: bundle.length, gzipBytes: gzipSync(bundle).length, modified: statSync(bundlePath).mtime.toISOString() },
      shellOriginal: values['shell-original'],
      shellSystemInfo: values['shell-system-info'],
      rows: tables.flatMap((table) => table.results),
    };
    console.log(
      `npm run bench, ${report.date.slice(0, 16).replace('T', ' ')} UTC: rows on Node ${versions.join(', ')} (the bench on ${process.version}), ${report.platform}, ${report.cpus} cpus (${report.cpuModel}), ` +
        `1-min load ${loadBefore.toFixed(2)} before, ${report.loadAverage.after.toFixed(2)} after; ${rounds} interleaved rounds, ${memoryRounds} memory rounds, ${seconds.toFixed(0)} s`,
    );
    const shownPath = path.relative(process.cwd(), bundlePath).startsWith('..') ? bundlePath : path.relative(process.cwd(), bundlePath);
    console.log(`compiled file ${shownPath}: ${bundle.length.toLocaleString('en')} bytes (${report.bundle.gzipBytes.toLocaleString('en')} gzipped)\n`);
    console.log(formatTable(tables));
    console.log(`
ms: median wall time of a run, spawn to exit, and its quartiles (p25-p75). ratio: median and
quartiles of the per-round ratio to the row under "vs", measured in the same round on the same
Node; a goal is met when that median is at most the goal. The https: rows and their floors trust
the test CA through NODE_EXTRA_CA_CERTS. That makes Node build its root store at start-up, which
an https: process does anyway at its first connection (compare the two https: POST floors) and
node -e 0 never does. flush is divided by its floor, which reads, parses, gzips and POSTs the same
${QUEUED_FOR_FLUSH.toLocaleString('en')} files by hand. ${ROUND_TRIP_MS} ms RTT: through a TCP forwarder on 127.0.0.1 that holds every chunk
${ROUND_TRIP_MS / 2} ms each way. ${LINE_ROUND_TRIP_MS} ms RTT, delay line: every IP packet held ${LINE_ROUND_TRIP_MS / 2} ms each way
between two TUN devices, the receiver in a network namespace of the bench's own (root only).
RSS: median peak RSS over the memory rounds (GNU time, from the child's wait4
rusage), as a ratio to the same floor's. /bin/true: starting and reaping a process from the bench,
inside every row.${bench.shellOriginal && 'argv' in bench.shellOriginal ? ` The shell original: ${values['shell-original']}, rewritten to post to the receiver${values['shell-system-info'] ? `, after ${values['shell-system-info']} (its curl failing at once), as the daemon ran them` : ', without the system-info.sh it took its facts from (--shell-system-info)'}.` : ''}
${gnuTime ? '' : `Peak memory was not measured: ${GNU_TIME} (Debian's \`time\` package) is missing.\n`}The machine may be shared: run it again before reading much into a few hundredths.`);
    if (leftovers.length > 0) console.log(`\nkilled processes the runs left behind: ${leftovers.join(', ')}`);
    if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    for (const helper of helpers) helper.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  console.error(`bench broke: ${error.message}`);
  process.exitCode = 1;
});
