import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { endpoint, makeRoot, runBundle, tempDir } from '../support/helpers.ts';

/**
 * The time budget is a bound whatever a system file does: a synchronous read cannot be
 * interrupted by a timer, so nothing that can block is read at all.
 */
const TIMEOUT_MS = 1000;
/** The budget counts from the child's start; this covers spawning it on a loaded machine. */
const SLACK_MS = 400;
const isRoot = process.getuid?.() === 0;

function hostileRoot(t: Parameters<typeof tempDir>[0], hostile: (root: string) => void): string {
  const root = makeRoot(t, { 'etc/machine-id': '00112233445566778899aabbccddeeff\n', 'proc/sys/kernel/ostype': 'Linux\n' });
  for (const dir of ['etc', 'proc/1', 'sys/class/dmi/id']) mkdirSync(path.join(root, dir), { recursive: true });
  hostile(root);
  return root;
}

const CASES: { name: string; make: (root: string) => void; rootOnly?: boolean }[] = [
  { name: 'a FIFO at etc/os-release and proc/1/environ', make: (root) => ['etc/os-release', 'proc/1/environ'].forEach((rel) => execFileSync('mkfifo', [path.join(root, rel)])) },
  { name: 'a 20 MB etc/os-release', make: (root) => writeFileSync(path.join(root, 'etc/os-release'), `NAME="${'x'.repeat(20 * 1024 * 1024)}"\n`) },
  {
    name: 'character devices (a terminal, /dev/zero) in place of system files',
    rootOnly: true,
    make: (root) => {
      execFileSync('mknod', [path.join(root, 'etc/os-release'), 'c', '5', '0']);
      execFileSync('mknod', [path.join(root, 'sys/class/dmi/id/product_name'), 'c', '1', '5']);
    },
  },
];

for (const { name, make, rootOnly } of CASES) {
  const skip = rootOnly && !isRoot && (process.env.CI ? false : 'mknod needs root');
  test(`start --timeout ${TIMEOUT_MS} ends within its budget with ${name}, and still reports`, { skip }, async (t) => {
    const server = await endpoint(t);
    const state = tempDir(t);
    const root = hostileRoot(t, make);
    const result = await runBundle(['start', '--timeout', String(TIMEOUT_MS), '--root', root, '--state-dir', state, '--config-dir', state, '--endpoint', server.url]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.ms < TIMEOUT_MS + SLACK_MS, `took ${Math.round(result.ms)} ms`);
    assert.equal(server.events().length, 1, 'the event still went out');
    const properties = server.events()[0].properties as Record<string, string>;
    assert.ok(String(properties.host_os_name).length <= 1000, 'values from system files are capped');
  });
}

test('a --background sender that cannot be started (its node is gone) changes nothing: exit 0, and the event waits for the next run', async (t) => {
  const server = await endpoint(t);
  const state = tempDir(t);
  const root = hostileRoot(t, () => undefined);
  const args = ['--root', root, '--state-dir', state, '--config-dir', state, '--endpoint', server.url];
  // A node of its own that deletes itself once running, as an upgrade that replaces node does:
  // the detached sender is started from process.execPath, which is then gone.
  const bin = tempDir(t, 'anon-stats-node-');
  const node = path.join(bin, 'node');
  try {
    linkSync(process.execPath, node);
  } catch {
    copyFileSync(process.execPath, node);
  }
  const vanish = path.join(bin, 'vanish.cjs');
  writeFileSync(vanish, "require('node:fs').unlinkSync(process.execPath);\n");
  const result = await runBundle(['start', '--background', ...args], { NODE_OPTIONS: `--require ${vanish}`, TELEMETRY_DEBUG: '1' }, node);
  assert.equal(result.code, 0);
  assert.match(result.stderr, /^anonymous-statistics: start [0-9a-f-]{36} waits in the outbox: cannot start the background sender .*$/m);
  assert.equal(existsSync(node), false, 'the node that ran it was gone');
  assert.equal(server.requests.length, 0, 'no sender ran');
  assert.equal((await runBundle(['flush', ...args])).code, 0);
  assert.equal(server.events().length, 1, 'the stored event went out with the next run');
});
