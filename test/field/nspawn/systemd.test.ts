/**
 * The shipped installer, systemd drop-in and SysV hook under a real systemd: Debian 12 with its
 * own nodejs, booted in systemd-nspawn, the daemon run as a service user that is not root.
 *
 *   sudo npm run test:systemd        (CI=true: fails, never skips, when it cannot run)
 *
 * The receiver is the local capture endpoint on the host's 127.0.0.1, which the container shares.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { boot, debianRoot, unavailableReason, until, type Machine } from './machine.ts';
import { Receiver } from './receiver.ts';

const PROJECT_DIR = path.resolve(__dirname, '../../..');
const unavailable = unavailableReason();
const inCI = Boolean(process.env.CI) && process.env.CI !== 'false';

const SRC = '/root/anonymous-statistics';
const UNIT = 'example-daemon.service';
const SERVICE_USER = 'exampled';
const INSTALLED = '/lib/example-daemon/anonymous-statistics.js';
/** The tool's own state dir (the example build's default), below the daemon's /var/lib/example-daemon. */
const STATE_DIR = '/var/lib/example-daemon/anonymous-statistics';
const DAEMON = '/usr/local/lib/example-daemon/example-daemon.sh';
const DROP_IN_DIR = `/etc/systemd/system/${UNIT}.d`;
const TRAP = '/opt/anonymous-statistics-test/no-remote-trap.cjs';
const TRAP_LOG = '/var/tmp/anonymous-statistics-trap.log';
/** Every node inside lets connections and lookups reach loopback only (test/support/no-remote-trap.cjs). */
const TRAPPED = { NODE_OPTIONS: `--require ${TRAP}`, TRAP_LOG };
/** The tool's built-in crash-loop limit: events of one kind per hour. */
const CRASH_LOOP_LIMIT = 10;
/** Starts systemd must make in the crash loop: well past the limit with the runs before it. */
const CRASH_LOOP_STARTS = 16;
/** A send takes a few hundred ms here; a loaded CI machine gets ample room. */
const ARRIVAL_MS = 15000;

/** The harness's daemon: lives until signalled; USR1 makes it exit 3; "crash" dies of SIGSEGV at once. */
const DAEMON_SCRIPT = `#!/bin/sh
if [ "\${1:-}" = crash ]; then kill -s SEGV $$; fi
trap 'exit 3' USR1
sleep infinity &
wait
`;

const UNIT_FILE = `[Unit]
Description=Example daemon of the anonymous-statistics harness

[Service]
User=${SERVICE_USER}
ExecStart=${DAEMON}
LimitCORE=0
`;

/** The harness's own drop-in, beside the shipped one: a daemon that crashes at every start. */
const CRASH_LOOP_DROP_IN = `[Unit]
StartLimitIntervalSec=0

[Service]
ExecStart=
ExecStart=${DAEMON} crash
Restart=always
RestartSec=100ms
`;

const SYSV_PREFIX = '/opt/sysv';
const SYSV_SCRIPT = '/etc/init.d/sysv-example-daemon';
/** An init.d script as Debian writes them, with the installed hook sourced. */
const SYSV_INIT = `#!/bin/sh
. ${SYSV_PREFIX}/lib/example-daemon/anonymous-statistics-hook.sh
PIDFILE=/run/sysv-example-daemon.pid
case "$1" in
  start)
    start-stop-daemon --start --background --make-pidfile --pidfile $PIDFILE --chuid ${SERVICE_USER} --startas ${DAEMON} &&
      anonymous_statistics start ;;
  stop)
    start-stop-daemon --stop --retry TERM/5 --pidfile $PIDFILE --remove-pidfile
    anonymous_statistics stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
`;

/** What systemd says of the main process's end, as the exit code a stop must carry. */
function reportedExitCode(show: string): number {
  const value = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(show)?.[1] ?? '';
  if (value('Result') === 'success') return 0;
  const status = Number(value('ExecMainStatus'));
  // ExecMainCode is the waitid() si_code: 1 CLD_EXITED, 2 CLD_KILLED, 3 CLD_DUMPED.
  return value('ExecMainCode') === '1' ? status : 128 + status;
}

const skip = unavailable && !inCI ? `skipped: ${unavailable}` : false;
describe('under a real systemd (Debian 12, systemd-nspawn)', { skip, timeout: 9 * 60000 }, () => {
  const started = Date.now();
  const unitReceiver = new Receiver();
  let machine: Machine;
  const stopsDriven: { name: string; runId: unknown; expected: number }[] = [];

  const unitState = async () => (await machine.must(['systemctl', 'show', '-p', 'ActiveState', '--value', UNIT])).trim();
  const untilStopped = () => until(`${UNIT} to stop`, async () => (['inactive', 'failed'].includes(await unitState()) ? true : undefined), 30000);
  /** True while any copy of the tool runs in the container (a --background sender included). */
  const senderRunning = async () => (await machine.run(['sh', '-c', 'grep -ls "anonymous-statistics[.]js" /proc/[0-9]*/cmdline'])).stdout.trim() !== '';
  const untilNoSender = () => until('the detached senders to finish', async () => ((await senderRunning()) ? undefined : true), ARRIVAL_MS);
  const newEvent = (receiver: Receiver, kind: string, seen: number) =>
    until(`a new "${kind}" at the receiver`, () => receiver.events(kind)[seen], ARRIVAL_MS);
  const asServiceUser = (argv: string[], env: Record<string, string>) => machine.run(['runuser', '-u', SERVICE_USER, '--', ...argv], { env });
  /** Runs a phase; however it ends, the unit is left stopped, so one failure does not spill into the next phase. */
  const phase = async (body: () => Promise<void>) => {
    try {
      await body();
    } finally {
      if (!['inactive', 'failed'].includes(await unitState())) await machine.run(['systemctl', 'stop', UNIT]);
    }
  };

  before(async () => {
    if (unavailable) throw new Error(`${unavailable}; CI must run this harness, not skip it`);
    const root = debianRoot((line) => console.log(line));
    await unitReceiver.up();
    machine = await boot(root);
    const tar = (dirs: string[]) => {
      const packed = spawnSync('tar', ['-C', PROJECT_DIR, '-cf', '-', ...dirs], { maxBuffer: 1 << 28 });
      assert.equal(packed.status, 0, String(packed.stderr));
      return packed.stdout;
    };
    await machine.must(['sh', '-c', `mkdir -p ${SRC} && tar -C ${SRC} -xf -`], { input: tar(['dist', 'scripts']) });
    await machine.write(TRAP, readFileSync(path.join(PROJECT_DIR, 'test/support/no-remote-trap.cjs'), 'utf8'));
    await machine.must(['sh', '-c', `: >${TRAP_LOG} && chmod 0666 ${TRAP_LOG}`]);
    await machine.must(['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', SERVICE_USER]);
    await machine.write(DAEMON, DAEMON_SCRIPT, '0755');
    // Every unit started from now on sees the receiver and the trap, as a vendor's build would
    // have the endpoint built in.
    await machine.must(['systemctl', 'set-environment', `TELEMETRY_ENDPOINT=${unitReceiver.url}`, ...Object.entries(TRAPPED).map(([k, v]) => `${k}=${v}`)]);
  });

  after(async () => {
    try {
      if (machine) {
        if (!machine.running()) console.log(`the container ended before the tests did; its console:\n${machine.console()}`);
        const trapped = await machine.run(['cat', TRAP_LOG]);
        await machine.shutdown();
        assert.equal(trapped.stdout, '', 'a run inside tried to reach a non-loopback address');
      }
    } finally {
      await unitReceiver.down();
      console.log(`harness wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  });

  it('installs as root with the shipped installer, which shows the notice once and sends nothing in that run', async (t) => {
    const result = await machine.run(['sh', `${SRC}/scripts/install.sh`], { env: { TELEMETRY_ENDPOINT: unitReceiver.url, ...TRAPPED } });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr.match(/anonymous usage statistics/g)?.length, 1, `the notice, once, on the installer's stderr:\n${result.stderr}`);
    // The run that tells sends nothing and starts no sender: its report waits for the unit's first start.
    assert.equal(await senderRunning(), false, 'no sender started');
    assert.deepEqual(unitReceiver.events('install'), []);
    assert.equal((await machine.must(['sh', '-c', `ls ${STATE_DIR}/outbox/new | wc -l`])).trim(), '1', 'the report waits in the outbox');
    const settings = JSON.parse(await machine.must(['cat', '/lib/example-daemon/anonymous-statistics.json']));
    assert.deepEqual(settings, { configDir: '/etc/example-daemon', stateDir: '/var/lib/example-daemon/anonymous-statistics' });
    t.diagnostic(`installer stderr: ${JSON.stringify(result.stderr)}`);
  });

  it('runs the unit as a service user with the shipped drop-in, unchanged', async () => {
    await machine.write(`/etc/systemd/system/${UNIT}`, UNIT_FILE);
    await machine.must(['sh', '-c', `mkdir -p ${DROP_IN_DIR} && cp ${SRC}/scripts/systemd/anonymous-statistics.conf ${DROP_IN_DIR}/`]);
    assert.equal(
      await machine.must(['cat', `${DROP_IN_DIR}/anonymous-statistics.conf`]),
      readFileSync(path.join(PROJECT_DIR, 'scripts/systemd/anonymous-statistics.conf'), 'utf8'),
    );
    await machine.must(['systemctl', 'daemon-reload']);
    await machine.must(['systemctl', 'start', UNIT]);
    const start = await newEvent(unitReceiver, 'start', 0);
    const install = await newEvent(unitReceiver, 'install', 0);
    assert.deepEqual([install.properties.install_result, String(install.properties.install_code)], ['success', '0'], 'the installer\'s report went with the first start');
    assert.equal((await machine.must(['systemctl', 'show', '-p', 'User', '--value', UNIT])).trim(), SERVICE_USER);
    // StateDirectory=: systemd made the tool's own dir the service user's, the installer's report's
    // files too; the daemon's dir above it stays root's.
    const owners = await machine.must(['sh', '-c', `stat -c %U ${STATE_DIR}; find ${STATE_DIR} ! -user exampled; stat -c '%U %a' /var/lib/example-daemon`]);
    assert.equal(owners, `${SERVICE_USER}\nroot 755\n`, 'the state dir and everything in it belong to the service user');
    await machine.must(['systemctl', 'stop', UNIT]);
    stopsDriven.push({ name: 'first clean stop', runId: start.properties.run_id, expected: 0 });
    await untilNoSender();
  });

  // Each: start the unit, wait for its start to arrive, end it this way, then compare the stop
  // that arrives with the exit code systemd itself reports.
  const endings: [string, string[], number][] = [
    ['a clean stop (systemctl stop)', ['systemctl', 'stop', UNIT], 0],
    ['an exit with status 3', ['systemctl', 'kill', '--kill-who=main', '--signal=USR1', UNIT], 3],
    ['kill -9', ['systemctl', 'kill', '--kill-who=main', '--signal=KILL', UNIT], 137],
    ['a crash (SIGSEGV)', ['systemctl', 'kill', '--kill-who=main', '--signal=SEGV', UNIT], 139],
  ];
  for (const [name, drive, expected] of endings) {
    it(`reports ${name} once, with the exit code systemd reported (${expected})`, () =>
      phase(async () => {
        const [starts, stops] = [unitReceiver.events('start').length, unitReceiver.events('stop').length];
        await machine.must(['systemctl', 'start', UNIT]);
        const start = await newEvent(unitReceiver, 'start', starts);
        await machine.must(drive);
        await untilStopped();
        const reported = reportedExitCode(await machine.must(['systemctl', 'show', '-p', 'Result,ExecMainCode,ExecMainStatus', UNIT]));
        assert.equal(reported, expected, 'systemd saw the daemon end this way');
        stopsDriven.push({ name, runId: start.properties.run_id, expected: reported });
        const stop = await newEvent(unitReceiver, 'stop', stops);
        assert.equal(stop.properties.exit_code, reported);
        assert.equal(typeof start.properties.run_id, 'string', 'a start carries its run_id');
        assert.equal(stop.properties.run_id, start.properties.run_id, 'the stop ends the run its start began');
      }));
  }

  it('delivers a stop reported while the receiver was down once it is back (the next run, or a flush)', (t) =>
    phase(async () => {
      const stops = unitReceiver.events('stop').length;
      await machine.must(['systemctl', 'start', UNIT]);
      const start = await newEvent(unitReceiver, 'start', unitReceiver.events('start').length);
      await unitReceiver.down();
      await machine.must(['systemctl', 'stop', UNIT]);
      stopsDriven.push({ name: 'stop while the receiver was down', runId: start.properties.run_id, expected: 0 });
      await unitReceiver.up();
      // The next run, with the receiver back.
      const starts = unitReceiver.events('start').length;
      await machine.must(['systemctl', 'start', UNIT]);
      await until('the next start to arrive or its sender to end', async () => (unitReceiver.events('start').length > starts || !(await senderRunning()) ? true : undefined), ARRIVAL_MS);
      t.diagnostic(`the stop sent while the receiver was down arrived with the next start's run: ${unitReceiver.events('stop').length > stops}`);
      await machine.must(['systemctl', 'stop', UNIT]);
      // Its run_id is known once its start has arrived, which the receiver's back-off may hold until the flush.
      const afterOutage: (typeof stopsDriven)[number] = { name: 'clean stop after the receiver came back', runId: undefined, expected: 0 };
      stopsDriven.push(afterOutage);
      const flush = await asServiceUser(['node', INSTALLED, 'flush'], { TELEMETRY_ENDPOINT: unitReceiver.url, ...TRAPPED });
      assert.equal(flush.code, 0, flush.stderr);
      await until('both stops', () => (unitReceiver.events('stop').length >= stops + 2 ? true : undefined), ARRIVAL_MS);
      const late = unitReceiver.events('stop').find((stop) => stop.properties.run_id === start.properties.run_id);
      assert.ok(late, 'the stop reported while the receiver was down arrived');
      assert.equal(late.properties.exit_code, 0);
      const next = await until("the next run's start", () => unitReceiver.events('start')[starts], ARRIVAL_MS).catch(() => undefined);
      afterOutage.runId = next?.properties.run_id;
      if (!next) t.diagnostic(`outbox and ledger after the flush:\n${(await machine.run(['sh', '-c', `find ${STATE_DIR}/outbox -type f; tail -n 8 ${STATE_DIR}/history.jsonl`])).stdout}`);
      assert.ok(next, "the next run's start arrived");
    }));

  it('delivered every stop exactly once, with its exit code', async (t) => {
    await untilNoSender();
    // The first stop, the endings, and the two around the receiver's outage.
    assert.equal(stopsDriven.length, 1 + endings.length + 2, 'every stop was driven');
    const stops = unitReceiver.events('stop');
    const uuids = unitReceiver.events().map((event) => event.uuid);
    assert.equal(new Set(uuids).size, uuids.length, 'no event arrived twice');
    // Per stop driven: the exit codes of the stops that arrived for its run (one, if all is well).
    const arrived = stopsDriven.map(({ name, runId }) => [name, stops.filter((stop) => runId !== undefined && stop.properties.run_id === runId).map((stop) => stop.properties.exit_code)]);
    const delivered = arrived.filter(([, codes], index) => codes.length === 1 && codes[0] === stopsDriven[index].expected).length;
    t.diagnostic(`stops delivered under real systemd: ${delivered} of ${stopsDriven.length} (${stops.length} stop events received)`);
    assert.deepEqual(arrived, stopsDriven.map(({ name, expected }) => [name, [expected]]));
    assert.equal(stops.length, stopsDriven.length, 'no stop arrived that was not driven');
  });

  it(`keeps a crash loop under Restart=always within the limit (${CRASH_LOOP_LIMIT} of a kind an hour)`, async (t) => {
    const [startsBefore, stopsBefore] = [unitReceiver.events('start').length, unitReceiver.events('stop').length];
    await machine.write(`${DROP_IN_DIR}/zz-crash-loop.conf`, CRASH_LOOP_DROP_IN);
    await machine.must(['systemctl', 'daemon-reload']);
    let restarts = 0;
    try {
      await machine.run(['systemctl', 'start', UNIT]);
      restarts = await until(
        `${CRASH_LOOP_STARTS} starts of the crashing unit`,
        async () => {
          const count = Number((await machine.must(['systemctl', 'show', '-p', 'NRestarts', '--value', UNIT])).trim());
          return count + 1 >= CRASH_LOOP_STARTS ? count : undefined;
        },
        120000,
        200,
      );
    } finally {
      await machine.must(['systemctl', 'stop', UNIT]);
      await untilStopped();
      await machine.must(['rm', `${DROP_IN_DIR}/zz-crash-loop.conf`]);
      await machine.must(['systemctl', 'daemon-reload']);
    }
    await untilNoSender();
    // Whatever the loop left queued goes out now, still within the limit.
    const flush = await asServiceUser(['node', INSTALLED, 'flush'], { TELEMETRY_ENDPOINT: unitReceiver.url, ...TRAPPED });
    assert.equal(flush.code, 0, flush.stderr);
    await untilNoSender();
    const [starts, stops] = [unitReceiver.events('start').length, unitReceiver.events('stop').length];
    t.diagnostic(
      `crash loop: systemd started the unit ${restarts + 1} times (${startsBefore} starts before it this hour); ` +
        `received ${starts - startsBefore} starts and ${stops - stopsBefore} stops of the loop, ${starts} starts and ${stops} stops this hour; limit ${CRASH_LOOP_LIMIT}`,
    );
    assert.ok(starts <= CRASH_LOOP_LIMIT, `${starts} starts arrived this hour`);
    assert.ok(stops <= CRASH_LOOP_LIMIT, `${stops} stops arrived this hour`);
    for (const stop of unitReceiver.events('stop').slice(stopsBefore)) assert.equal(stop.properties.exit_code, 139, 'each crash was a SIGSEGV');
  });

  describe('the SysV hook, from an init.d script with start-stop-daemon', () => {
    const receiver = new Receiver();
    const env = () => ({ TELEMETRY_ENDPOINT: receiver.url, ...TRAPPED });
    before(() => receiver.up());
    after(() => receiver.down());

    it('reports start and stop, and a stop made while the receiver was down once it is back', async (t) => {
      const install = await machine.run(['sh', `${SRC}/scripts/install.sh`, '--prefix', SYSV_PREFIX], { env: env() });
      assert.equal(install.code, 0, install.stderr);
      await untilNoSender();
      await machine.write(SYSV_SCRIPT, SYSV_INIT, '0755');

      const runs: unknown[] = [];
      for (let run = 0; run < 2; run++) {
        assert.equal((await machine.run([SYSV_SCRIPT, 'start'], { env: env() })).code, 0);
        runs.push((await newEvent(receiver, 'start', run)).properties.run_id);
        if (run === 1) await receiver.down();
        const stop = await machine.run([SYSV_SCRIPT, 'stop'], { env: env() });
        assert.deepEqual([stop.code, stop.stderr], [0, '']);
        if (run === 0) await newEvent(receiver, 'stop', 0);
      }
      await untilNoSender();
      await receiver.up();
      const flush = await machine.run(['node', `${SYSV_PREFIX}/lib/example-daemon/anonymous-statistics.js`, 'flush'], { env: env() });
      assert.equal(flush.code, 0, flush.stderr);
      await newEvent(receiver, 'stop', 1);
      await untilNoSender();
      const stops = receiver.events('stop');
      t.diagnostic(`SysV stops delivered: ${stops.length} of 2`);
      assert.deepEqual(
        stops.map((stop) => [stop.properties.run_id, stop.properties.exit_code]),
        runs.map((runId) => [runId, 0]),
      );
      // The hook ran as root: it used the prefix's state dir the installer recorded, not the build's.
      assert.equal((await machine.run(['test', '-d', `${SYSV_PREFIX}${STATE_DIR}/outbox`])).code, 0, 'the prefix state dir holds the outbox');
    });
  });

  describe("the installer's choices, for the installed copy run bare", () => {
    const receiver = new Receiver();
    const env = () => ({ TELEMETRY_ENDPOINT: receiver.url, ...TRAPPED });
    before(() => receiver.up());
    after(() => receiver.down());

    const optOuts: [string, string[], Record<string, string>][] = [
      ['--disable-telemetry', ['--disable-telemetry'], {}],
      ['DO_NOT_TRACK=1', [], { DO_NOT_TRACK: '1' }],
      ['DISABLE_TELEMETRY=0', [], { DISABLE_TELEMETRY: '0' }],
    ];
    for (const [index, [name, flags, optOutEnv]] of optOuts.entries()) {
      it(`an opt-out given to the installer (${name}) holds for the installed copy and its hook`, async () => {
        const prefix = `/opt/quiet-${index}`;
        const install = await machine.run(['sh', `${SRC}/scripts/install.sh`, '--prefix', prefix, ...flags], { env: { ...env(), ...optOutEnv } });
        assert.equal(install.code, 0, install.stderr);
        const lib = `${prefix}/lib/example-daemon`;
        const hook = await machine.run([`${lib}/anonymous-statistics-hook.sh`, 'start'], { env: env() });
        const direct = await machine.run(['node', `${lib}/anonymous-statistics.js`, 'stop'], { env: env() });
        assert.deepEqual([hook.code, direct.code], [0, 0], hook.stderr + direct.stderr);
        const status = await machine.run(['node', `${lib}/anonymous-statistics.js`, 'status'], { env: env() });
        assert.match(status.stdout, /telemetry: off/, status.stdout + status.stderr);
        await untilNoSender();
        assert.equal(receiver.requestCount(), 0, 'the receiver heard from an opted-out install');
      });
    }

    it('a --prefix install with --user gives the service user its state dir, which the bare copy uses', async () => {
      const prefix = '/opt/svc';
      const install = await machine.run(['sh', `${SRC}/scripts/install.sh`, '--prefix', prefix, '--user', SERVICE_USER], { env: env() });
      assert.equal(install.code, 0, install.stderr);
      const run = await asServiceUser(['node', `${prefix}/lib/example-daemon/anonymous-statistics.js`, 'start'], env());
      assert.equal(run.code, 0, run.stderr);
      await newEvent(receiver, 'start', 0);
      // The installer showed the notice: its report waited, and went with the service user's first run.
      await newEvent(receiver, 'install', 0);
      await untilNoSender();
      const state = `${prefix}${STATE_DIR}`;
      assert.equal(await machine.must(['stat', '-c', '%U %a', state]), `${SERVICE_USER} 700\n`);
      assert.equal(await machine.must(['find', state, '!', '-user', SERVICE_USER]), '', 'everything in it is the service user\'s');
      await machine.must(['test', '-f', `${state}/state.json`]);
    });
  });
});
