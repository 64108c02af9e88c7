import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, lchownSync, mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { makeRoot, tempDir, trapViolations } from '../../support/helpers.ts';
import { assertRefused, MACHINE, NOBODY, openTempDir, picture, receiver, requireRoot, runHard, statusJson } from '../../support/host-safety.ts';

/**
 * The state dir is trusted the way OpenSSH's StrictModes trusts a path: every dir from / down to
 * it, and outbox/ with its folders, owned by root or the running user, writable by nobody else,
 * no symlink another user planted. A dir that fails is used for nothing; with no usable dir the
 * run stores and sends nothing, and `status --json` names the refused dir (issue 14 item 2).
 */

after(() => assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address'));

interface Planted {
  /** The --state-dir given to the run. */
  state: string;
  /** The dir whose before/after picture proves nothing was written: it holds everything a run could touch. */
  watched: string;
}

/** Each way a path can be another user's to change, set up under a dir of the test's own. */
const UNTRUSTED: Record<string, (t: TestContext) => Planted> = {
  'its parent is writable by everyone (0777, no sticky bit)': (t) => {
    const shared = path.join(openTempDir(t), 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    return { state: path.join(shared, 'state'), watched: shared };
  },
  'its parent belongs to another user': (t) => {
    const home = path.join(openTempDir(t), 'home');
    mkdirSync(home, { mode: 0o755 });
    chownSync(home, NOBODY, NOBODY);
    return { state: path.join(home, 'state'), watched: home };
  },
  'its outbox/ belongs to another user': (t) => {
    const state = path.join(openTempDir(t), 'state');
    mkdirSync(path.join(state, 'outbox'), { recursive: true, mode: 0o700 });
    for (const folder of ['tmp', 'new', 'cur', 'corrupt']) mkdirSync(path.join(state, 'outbox', folder), { mode: 0o700 });
    chownSync(path.join(state, 'outbox'), NOBODY, NOBODY);
    return { state, watched: state };
  },
  'its outbox/new is a symlink another user planted': (t) => {
    const state = path.join(openTempDir(t), 'state');
    mkdirSync(path.join(state, 'outbox'), { recursive: true, mode: 0o700 });
    for (const folder of ['tmp', 'cur', 'corrupt']) mkdirSync(path.join(state, 'outbox', folder), { mode: 0o700 });
    const elsewhere = path.join(state, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o700 });
    symlinkSync(elsewhere, path.join(state, 'outbox', 'new'));
    lchownSync(path.join(state, 'outbox', 'new'), NOBODY, NOBODY);
    return { state, watched: state };
  },
};

for (const [how, plant] of Object.entries(UNTRUSTED)) {
  test(`a state dir where ${how} is refused: the event exits 0 having stored and sent nothing, and status --json names the dir`, async (t) => {
    requireRoot('dirs owned by another user');
    const { state, watched } = plant(t);
    // No fallback either: the temp dir offered is shared and writable by all.
    const sharedTmp = path.join(openTempDir(t), 'tmp');
    mkdirSync(sharedTmp);
    chmodSync(sharedTmp, 0o777);
    const env = { TMPDIR: sharedTmp };
    const before = { watched: picture(watched), tmp: picture(sharedTmp) };
    const server = await receiver(t, () => 200);
    const args = ['--state-dir', state, '--endpoint', server.url, '--root', makeRoot(t, MACHINE)];
    const run = await runHard(['fatal', '--process', 'd', '--thread', 't', ...args], { env });
    assert.deepEqual([run.killed, run.code, run.stderr], [false, 0, '']);
    assert.deepEqual(picture(watched), before.watched, `nothing was created, changed or removed in ${watched}`);
    assert.deepEqual(picture(sharedTmp), before.tmp, 'nor in a shared temp dir');
    assert.deepEqual(server.requests, [], 'what cannot be stored is not sent');
    const status = await statusJson(args, env);
    assertRefused(status, state);
    assert.equal(status.state_dir, null, 'no usable dir is left');
  });
}

/** A configured state dir root may not use: another user's, so a run looks for somewhere else. */
function foreignStateDir(t: TestContext): string {
  const state = path.join(openTempDir(t), 'foreign');
  mkdirSync(state, { mode: 0o700 });
  chownSync(state, NOBODY, NOBODY);
  return state;
}

const FALLBACKS: Record<string, (t: TestContext) => { env: Record<string, string>; cwd?: string; untouched: string; cleanup?: string }> = {
  '$XDG_STATE_HOME': (t) => {
    const xdg = tempDir(t);
    return { env: { XDG_STATE_HOME: xdg, TMPDIR: tempDir(t) }, untouched: xdg };
  },
  '$HOME': (t) => {
    const home = tempDir(t);
    return { env: { HOME: home, TMPDIR: tempDir(t) }, untouched: home };
  },
  'a relative $TMPDIR (the caller\'s working directory)': (t) => {
    const cwd = tempDir(t);
    return { env: { TMPDIR: 'relative/x' }, cwd, untouched: cwd };
  },
  'a $TMPDIR that does not exist': () => {
    const missing = `/nonexistent-anon-stats-${process.pid}`;
    return { env: { TMPDIR: `${missing}/x` }, untouched: missing, cleanup: missing };
  },
};

for (const [where, setup] of Object.entries(FALLBACKS)) {
  test(`root never falls back into ${where} when the configured state dir is unusable`, async (t) => {
    requireRoot('the fallbacks root must not take');
    const state = foreignStateDir(t);
    const { env, cwd, untouched, cleanup } = setup(t);
    if (cleanup) t.after(() => rmSync(cleanup, { recursive: true, force: true }));
    const existed = existsSync(untouched);
    const args = ['--state-dir', state, '--endpoint', 'http://127.0.0.1:9', '--root', makeRoot(t, MACHINE)];
    const run = await runHard(['start', '--timeout', '1000', ...args], { env, cwd });
    assert.deepEqual([run.killed, run.code], [false, 0], run.stderr);
    if (existed) assert.deepEqual(readdirSync(untouched, { recursive: true }), [], `root created nothing under ${where}`);
    else assert.equal(existsSync(untouched), false, `root did not create ${untouched}`);
    assert.deepEqual(readdirSync(state), [], 'nor in the other user\'s dir');
  });
}
