import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { PROJECT_DIR, runBundle } from '../support/helpers.ts';

/**
 * The contract lives in the repository (docs/contract.md) so a clone on its own can read and test
 * against it; where the live one (../shared) is beside the clone, as for developers and CI, the
 * copy must be the same text, or the code and docs were written against an old contract.
 */
const CONTRACT_IN_REPO = path.join(PROJECT_DIR, 'docs/contract.md');
const LIVE_CONTRACT = path.join(PROJECT_DIR, '../shared/CONTRACT.md');

test('docs/contract.md is the live contract', { skip: !existsSync(LIVE_CONTRACT) && 'no ../shared beside this clone: docs/contract.md is used as it is' }, () => {
  assert.equal(readFileSync(CONTRACT_IN_REPO, 'utf8'), readFileSync(LIVE_CONTRACT, 'utf8'), '../shared/CONTRACT.md changed: copy it to docs/contract.md and bring the code up to it');
});

/** The tool's part of the contract: the example installer's options (--src, --prefix, --user) are install.sh's, not the tool's. */
function toolContract(): string {
  const contract = readFileSync(CONTRACT_IN_REPO, 'utf8');
  return contract.replace(/^## The example installer\n[\s\S]*?(?=^## )/m, '');
}

test('--help lists every command and every option the contract names', async () => {
  const CONTRACT = toolContract();
  const help = await runBundle(['--help']);
  assert.equal(help.code, 0);
  const options = new Set([...CONTRACT.matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0]));
  // The contract's example of a vendor's optOutFlag: a flavour's --help lists its own (test/built/flavour.test.ts).
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
