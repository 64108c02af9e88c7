import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, writeSync } from 'node:fs';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { makeRoot, tempDir, trapViolations } from '../../support/helpers.ts';
import { assertEndedWithin, DEAD_ENDPOINT, MACHINE, NOBODY, receiver, runHard, seedOutbox, SLACK_MS, trivialRunMs } from '../../support/host-safety.ts';

/**
 * Every run ends within --timeout (+ process start) whatever its input, its state dir or its
 * stdout (issue 14 item 4). Limits are relative to a trivial run timed in the same test, so a
 * loaded machine slows both; each run is hard-killed well past its limit, so the suite cannot hang.
 */

after(() => assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address'));

const BUDGET_MS = 300;

async function limitMs(t: TestContext): Promise<number> {
  return (await trivialRunMs(t)) + BUDGET_MS + SLACK_MS;
}

function stateDir(t: TestContext): string {
  return path.join(tempDir(t), 'state');
}

test('14 values of a:// x 32,500 (the scrubber\'s worst case) do not hold cloud-connect-fail --timeout 300 past its budget', async (t) => {
  const limit = await limitMs(t);
  const value = 'a://'.repeat(32_500);
  const values = [...Array.from({ length: 13 }, () => ['--code', value]).flat(), '--message', value];
  const run = await runHard(['cloud-connect-fail', ...values, '--timeout', String(BUDGET_MS), '--state-dir', stateDir(t), '--endpoint', DEAD_ENDPOINT, '--root', makeRoot(t, MACHINE)], { killAfterMs: limit + 3000 });
  assertEndedWithin(run, limit, 'cloud-connect-fail with 14 hostile values');
});

/** A configured state dir root may not use (another user's), so a run looks for a fallback. */
function foreignStateDir(t: TestContext): string {
  const state = path.join(tempDir(t), 'foreign');
  mkdirSync(state, { mode: 0o700 });
  chownSync(state, NOBODY, NOBODY);
  return state;
}

const PROC_PATHS: Record<string, (t: TestContext) => { args: string[]; env: Record<string, string> }> = {
  '--state-dir /proc/x': () => ({ args: ['--state-dir', '/proc/x'], env: {} }),
  'HOME=/proc/x with the configured state dir unusable': (t) => ({ args: ['--state-dir', foreignStateDir(t)], env: { HOME: '/proc/x' } }),
  'TMPDIR=/proc with the configured state dir unusable': (t) => ({ args: ['--state-dir', foreignStateDir(t)], env: { TMPDIR: '/proc' } }),
};

for (const [what, setup] of Object.entries(PROC_PATHS)) {
  test(`an event run with ${what} ends within its budget (no mkdir loop on procfs)`, async (t) => {
    const limit = await limitMs(t);
    const { args, env } = setup(t);
    const run = await runHard(['start', '--timeout', String(BUDGET_MS), '--endpoint', DEAD_ENDPOINT, '--root', makeRoot(t, MACHINE), ...args], { env, killAfterMs: limit + 1500 });
    assertEndedWithin(run, limit, `start with ${what}`);
  });
}

test('disable --config-dir /proc/x ends on its own, saying it could not (exit 1)', async (t) => {
  const limit = await limitMs(t);
  const run = await runHard(['disable', '--config-dir', '/proc/x', '--timeout', String(BUDGET_MS), '--state-dir', stateDir(t)], { killAfterMs: limit + 1500 });
  assert.equal(run.killed, false, `still running after ${Math.round(run.ms)} ms, killed by the test`);
  assert.equal(run.code, 1, run.stderr);
  assert.ok(run.ms < limit, `took ${Math.round(run.ms)} ms, limit ${Math.round(limit)} ms`);
  assert.equal(run.stderr.trim().split('\n').length, 1, 'one line says why');
});

/** A pid no process has: one that has just exited and been reaped. */
function deadPid(): number {
  const { pid } = spawnSync('true');
  assert.ok(pid);
  return pid;
}

test('100,000 stale claims in outbox/cur do not hold a run past its budget, and afterwards outbox/new holds at most 1,000 events', async (t) => {
  const state = stateDir(t);
  const root = makeRoot(t, MACHINE);
  await seedOutbox(t, state, root, 1);
  const cur = path.join(state, 'outbox', 'cur');
  const pid = deadPid();
  const claimedAt = Date.now() - 60_000;
  // Empty files: the names are the load; 100,000 of them cost no disk blocks.
  for (let i = 0; i < 100_000; i++) {
    const uuid = `c0000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    closeSync(openSync(path.join(cur, `${String(claimedAt - i).padStart(13, '0')}-${uuid}.json.${pid}-${claimedAt}`), 'wx', 0o600));
  }
  // A receiver that takes the new event, so the run goes on to what waits.
  const server = await receiver(t, () => 200);
  const limit = await limitMs(t);
  const run = await runHard(['start', '--timeout', String(BUDGET_MS), '--state-dir', state, '--endpoint', server.url, '--root', root], { killAfterMs: limit + 10_000 });
  assertEndedWithin(run, limit, 'start over 100,000 stale claims');
  const waiting = readdirSync(path.join(state, 'outbox', 'new')).length;
  assert.ok(waiting <= 1000, `${waiting} events wait in outbox/new, past the 1,000 cap`);
});

test('command-start --timeout 300 with stdout a full pipe nobody reads ends within its budget', async (t) => {
  const fifo = path.join(tempDir(t), 'stdout.fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  // A reader that never reads keeps the pipe open; a non-blocking writer fills it to the brim.
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const filler = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  const stdout = openSync(fifo, constants.O_WRONLY);
  t.after(() => [reader, filler, stdout].forEach((fd) => closeSync(fd)));
  const chunk = Buffer.alloc(4096, 'x');
  let filled = 0;
  try {
    for (;;) filled += writeSync(filler, chunk);
  } catch (error) {
    assert.equal((error as NodeJS.ErrnoException).code, 'EAGAIN');
  }
  assert.ok(filled > 0, 'the pipe is full');
  const limit = await limitMs(t);
  const state = stateDir(t);
  const run = await runHard(['command-start', '--name', 'converge', '--timeout', String(BUDGET_MS), '--state-dir', state, '--endpoint', DEAD_ENDPOINT, '--root', makeRoot(t, MACHINE)], {
    stdio: ['ignore', stdout, 'pipe'],
    killAfterMs: limit + 5000,
  });
  assertEndedWithin(run, limit, 'command-start writing to a full pipe');
  assert.ok(existsSync(state), 'the run itself went ahead');
});
