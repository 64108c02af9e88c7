/**
 * Runs the built file's end-to-end suites (the bundle as users run it) under every Node.js
 * version in NODE_VERSIONS; the test runner itself stays on the current Node. Part of `npm test`.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { NODE_VERSIONS, nodeBinary } from './node-versions.ts';

const SUITES = ['test/built/e2e.test.ts', 'test/built/delivery.test.ts', 'test/built/integration.test.ts', 'test/unit/after-consent/deliver/proxy.test.ts', 'test/built/run-anywhere.test.ts'];
const projectDir = path.resolve(__dirname, '..');

let failed = 0;
for (const version of NODE_VERSIONS) {
  console.log(`\n# the built file on Node ${version}`);
  const result = spawnSync(process.execPath, ['--test', '--test-reporter', 'dot', '--import', 'tsx', ...SUITES], {
    cwd: projectDir,
    stdio: 'inherit',
    env: { ...process.env, TEST_NODE: nodeBinary(version) },
  });
  if (result.status !== 0) {
    failed++;
    console.log(`# Node ${version}: FAILED`);
  } else console.log(`# Node ${version}: all passed`);
}
console.log(`\nnode-versions: ${NODE_VERSIONS.length - failed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
