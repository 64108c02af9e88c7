import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { NODE_VERSIONS, nodeBinary } from '../scripts/node-versions.ts';
import { endpoint, listTree, makeRoot, runBundle, tempDir } from './helpers.ts';

/** The compiled file on the Node.js builds distributions ship (fetched by `npm test`'s pretest). */
for (const version of NODE_VERSIONS) {
  test(`the built file reports, dry-runs and honours opt-outs on Node ${version}`, async (t) => {
    const node = nodeBinary(version);
    assert.ok(existsSync(node), `${node} is missing: run "node --import tsx scripts/node-versions.ts"`);
    const server = await endpoint(t);
    const state = tempDir(t);
    const root = makeRoot(t, { 'etc/os-release': 'ID=debian\nVERSION_ID="12"\n', 'proc/sys/kernel/ostype': 'Linux\n' });
    const common = ['--endpoint', server.url, '--root', root, '--state-dir', state, '--config-dir', state];

    const sent = await runBundle(['fatal', '--process', 'd', '--thread', 'main', '--line', '7', ...common], {}, node);
    assert.deepEqual([sent.code, sent.stderr], [0, '']);
    assert.equal(server.requests.length, 1);
    assert.equal(JSON.parse(server.requests[0].body).properties.fatal_line, 7);

    const dry = await runBundle(['START', '-', '-', '--dry-run', ...common], {}, node);
    assert.equal(dry.code, 0);
    assert.equal(JSON.parse(dry.stdout).properties.host_os_id, 'debian');

    const optedOut = await runBundle(['start', ...common], { DO_NOT_TRACK: '1' }, node);
    assert.equal(optedOut.code, 0);
    assert.equal(server.requests.length, 1, 'no request when opted out');

    const bad = await runBundle(['stop', '--exit-code', 'x', ...common], {}, node);
    assert.equal(bad.code, 2);
    assert.deepEqual(listTree(state).filter((f) => f !== 'distinct-id'), []);
  });
}
