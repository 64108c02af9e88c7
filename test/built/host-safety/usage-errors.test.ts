import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { tempDir, trapViolations } from '../../support/helpers.ts';
import { runHard } from '../../support/host-safety.ts';

/**
 * A usage error is one line on stderr, exit 2, whatever the bad value holds: a newline must not
 * forge a second line in a log, and an escape sequence must not reach a terminal raw (issue 14,
 * "usage errors echo raw newlines and escape characters").
 */

after(() => assert.equal(trapViolations(), '', 'a run tried to reach a non-loopback address'));

const HOSTILE = ['x\nanonymous-statistics: all is well', '\x1b[31mred\x1b[0m', 'bell\x07', 'cr\rover', 'del\x7f', 'csi\u009b2J'];

/** Where a bad value is echoed back: each takes the hostile text and makes a command line. */
const ECHOED: Record<string, (bad: string) => string[]> = {
  'an unknown command': (bad) => [bad],
  'an unknown legacy command': (bad) => [`START${bad}`],
  'an unknown option': (bad) => ['start', `--x${bad}`],
  'a bad --timeout': (bad) => ['start', '--timeout', `1${bad}`],
  'a bad --line': (bad) => ['fatal', '--process', 'p', '--thread', 't', '--line', `1${bad}`],
  'a bad --result': (bad) => ['install', '--result', bad],
  'a bad --exit-code': (bad) => ['stop', '--exit-code', bad],
  'a bad --endpoint': (bad) => ['start', '--endpoint', `http://127.0.0.1:9${bad}`],
};

for (const [where, argv] of Object.entries(ECHOED)) {
  test(`${where} holding control characters is refused in exactly one line, with them escaped`, async (t) => {
    const config = tempDir(t);
    for (const bad of HOSTILE) {
      const run = await runHard([...argv(bad), '--config-dir', config, '--state-dir', `${config}/state`]);
      const shown = JSON.stringify(run.stderr);
      assert.equal(run.code, 2, `exit 2 for ${JSON.stringify(bad)}: ${shown}`);
      assert.match(run.stderr, /^[^\n]+\n$/, `one line for ${JSON.stringify(bad)}: ${shown}`);
      assert.doesNotMatch(run.stderr.slice(0, -1), /[\x00-\x1f\x7f\u0080-\u009f]/, `no raw control character for ${JSON.stringify(bad)}: ${shown}`);
      assert.equal(run.stdout, '', 'nothing on stdout');
    }
  });
}
