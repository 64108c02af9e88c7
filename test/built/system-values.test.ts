import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeRoot, runBundle } from '../support/helpers.ts';

/** Values the tool reads or is handed, not free text, still never carry an address, a home path or an escape sequence. */

test('os-release values and the product version are scrubbed like free text; a plain version is kept as written', async (t) => {
  const root = makeRoot(t, {
    'etc/os-release': 'NAME="Built by ops@example.com"\nID=debian\nVERSION="12 \x1b[31m(bookworm) on 10.0.0.1"\nVERSION_ID="1.2.3.4"\n',
  });
  const payload = async (version: string) => {
    const result = await runBundle(['start', '--dry-run', '--root', root, '--endpoint', 'http://127.0.0.1:9', '--product-version', version]);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout).properties as Record<string, string>;
  };
  const leaky = await payload('2.0 from /home/alice/build');
  assert.equal(leaky.host_os_name, 'Built by <email>');
  assert.equal(leaky.host_os_version, '12 (bookworm) on <ip>');
  assert.equal(leaky.host_os_version_id, '1.2.3.4', 'a four-part version is a version');
  assert.equal(leaky.product_version, '2.0 from <path>/build');
  assert.equal((await payload('1.2.3.4')).product_version, '1.2.3.4');
  assert.equal((await payload('v2.0.0-rc.1')).product_version, 'v2.0.0-rc.1');
});
