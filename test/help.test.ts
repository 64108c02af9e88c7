import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { PROJECT_DIR, runBundle } from './helpers.ts';

/**
 * The contract as this code was written against it, pinned in the repository so a clone on its
 * own can test against it; where the live one (../shared) is beside the clone, as for developers
 * and CI, it must still be the same text.
 */
const PINNED_CONTRACT = path.join(PROJECT_DIR, 'test/fixtures/CONTRACT.md');
const LIVE_CONTRACT = path.join(PROJECT_DIR, '../shared/CONTRACT.md');

test('the pinned contract is the live one', { skip: !existsSync(LIVE_CONTRACT) && 'no ../shared beside this clone: the pinned copy is used' }, () => {
  assert.equal(readFileSync(LIVE_CONTRACT, 'utf8'), readFileSync(PINNED_CONTRACT, 'utf8'), 'CONTRACT.md changed: update test/fixtures/CONTRACT.md and the code');
});

test('--help lists every command and every option the contract names', async () => {
  const CONTRACT = readFileSync(PINNED_CONTRACT, 'utf8');
  const help = await runBundle(['--help']);
  assert.equal(help.code, 0);
  const options = new Set([...CONTRACT.matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0]));
  // The contract's example of a vendor's optOutFlag: a flavour's --help lists its own (test/flavour.test.ts).
  options.delete('--disable-analytics');
  const commands = new Set([...CONTRACT.matchAll(/^\| `([a-z][a-z-]*)`/gm)].map((m) => m[1]));
  for (const name of ['status', 'disable', 'enable', 'flush', 'history', 'consent']) commands.add(name);
  assert.ok(options.size >= 20 && commands.size >= 12, 'the contract was read');
  for (const option of options) assert.ok(help.stdout.includes(option), `--help does not mention ${option}`);
  for (const command of commands) assert.match(help.stdout, new RegExp(`^  ${command}\\b`, 'm'), `--help does not list ${command}`);
});

test('--version prints the package version', async () => {
  const version = JSON.parse(readFileSync(path.join(PROJECT_DIR, 'package.json'), 'utf8')).version;
  const result = await runBundle(['--version']);
  assert.deepEqual([result.code, result.stdout], [0, `${version}\n`]);
});
