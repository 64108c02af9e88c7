import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { main } from '../src/run.ts';
import { fakeContext, PROJECT_DIR, tempDir } from './helpers.ts';

const EXECUTION_ID = '00000000-0000-4000-8000-000000000001';

/** Every command with every option, so every property appears at least once. */
const FULL_CALLS = [
  ['start'],
  ['stop', '--exit-code', '1'],
  ['fatal', '--process', 'p', '--thread', 't', '--function', 'f', '--file', 'x.c', '--line', '1', '--message', 'm'],
  ['cloud-connect-fail', '--code', 'C', '--message', 'm'],
  ['cloud-deps-fail', '--dependency', 'd'],
  ['cloud-unavailable', '--reason', 'r'],
  ['install', '--result', 'success', '--code', '0'],
  ['command-start', '--name', 'converge', '--option', 'dry-run', '--env-option', 'WERF_REPO'],
  ['command-end', '--execution-id', EXECUTION_ID, '--exit-code', '0'],
  ['command-action', '--execution-id', EXECUTION_ID, '--action', 'upload'],
];

test('the README "What we collect and why" table lists exactly the properties the payload carries', async (t) => {
  const readme = readFileSync(path.join(PROJECT_DIR, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('<!-- properties:start'), readme.indexOf('<!-- properties:end'));
  const documented = new Set(
    table
      .split('\n')
      .filter((line) => line.startsWith('| `'))
      .flatMap((line) => [...line.split('|')[1].matchAll(/`([^`]+)`/g)].map((m) => m[1])),
  );
  const sent = new Set<string>();
  const root = path.join(PROJECT_DIR, 'test/fixtures/roots/combo-docker-aws-host-os/root');
  // A run and an execution on record (sent nowhere: port 9 refuses), so stop and command-end carry what links them.
  const dirs = ['--state-dir', tempDir(t), '--config-dir', tempDir(t), '--root', root, '--endpoint', 'http://127.0.0.1:9'];
  for (const call of [['start'], ['command-start', '--name', 'converge']]) assert.equal(await main([...call, ...dirs], fakeContext({ elapsedMs: () => Infinity })), 0);
  for (const call of FULL_CALLS) {
    const ctx = fakeContext();
    assert.equal(await main([...call, '--dry-run', ...dirs], ctx), 0);
    for (const key of Object.keys(JSON.parse(ctx.out.join('')).properties)) sent.add(key);
  }
  assert.deepEqual([...documented].sort(), [...sent].sort());
});
