import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { parseInvocation } from '../../../../src/before-consent/cli/parse.ts';
import { resolveSettings } from '../../../../src/before-consent/config/settings.ts';
import type { VendorConfig } from '../../../../src/before-consent/config/vendor.ts';
import { optOuts } from '../../../../src/before-consent/consent/optout.ts';
import { UsageError } from '../../../../src/before-consent/errors.ts';
import { main } from '../../../../src/before-consent/run.ts';
import { endpoint, fakeContext, makeRoot, tempDir } from '../../../support/helpers.ts';

const ACME: VendorConfig = {
  ...fakeContext().vendor,
  commandName: 'acme',
  optOutEnv: { ACME_NO_ANALYTICS: 'any', WERF_TELEMETRY: '0' },
  optOutFlag: '--disable-analytics',
};
const noMarker = { disableFlag: undefined, optOutEnv: ACME.optOutEnv ?? {}, configDir: '/nonexistent/config' };
const decidedBy = (env: Record<string, string>) => optOuts(noMarker, env).map((optOut) => optOut.mechanism);

test('a "0" variable opts out on 0, false, off or no, in any case and with blanks around; nothing else', () => {
  for (const value of ['0', 'false', 'off', 'no', 'FALSE', 'Off', ' no ', '\t0\n']) assert.deepEqual(decidedBy({ WERF_TELEMETRY: value }), ['WERF_TELEMETRY'], JSON.stringify(value));
  for (const value of ['', '1', 'true', 'on', 'yes', '00', 'n', 'disable']) assert.deepEqual(decidedBy({ WERF_TELEMETRY: value }), [], JSON.stringify(value));
});

test('an "any" variable opts out on any non-empty value, 0 and false included, like DO_NOT_TRACK', () => {
  for (const value of ['1', '0', 'false', ' ', 'yes']) assert.deepEqual(decidedBy({ ACME_NO_ANALYTICS: value }), ['ACME_NO_ANALYTICS'], JSON.stringify(value));
  assert.deepEqual(decidedBy({ ACME_NO_ANALYTICS: '' }), []);
});

test("the vendor's variables are listed after the generic ones, and every one in force is named", () => {
  assert.deepEqual(decidedBy({ WERF_TELEMETRY: 'no', ACME_NO_ANALYTICS: 'x', DO_NOT_TRACK: '1' }), ['DO_NOT_TRACK', 'ACME_NO_ANALYTICS', 'WERF_TELEMETRY']);
  // Another build's names mean nothing here.
  assert.deepEqual(optOuts({ ...noMarker, optOutEnv: {} }, { WERF_TELEMETRY: '0' }), []);
});

test("the vendor's opt-out flag is accepted wherever --disable-telemetry is, and only in that build", () => {
  for (const argv of [['start', '--disable-analytics'], ['fatal', '--process', 'p', '--thread', 't', '--disable-analytics'], ['status', '--disable-analytics']]) {
    const invocation = parseInvocation(argv, ACME.optOutFlag);
    assert.ok(invocation.kind === 'event' || invocation.kind === 'management');
    assert.equal(resolveSettings(invocation.values, {}, ACME).disableFlag, '--disable-analytics', argv.join(' '));
  }
  assert.throws(() => parseInvocation(['start', '--disable-analytics']), (error) => error instanceof UsageError && /disable-analytics/.test(error.message));
  // An option's value that looks like the flag stays a value (getopt), and opts nothing out.
  const quoted = parseInvocation(['fatal', '--process', 'p', '--thread', 't', '--message', '--disable-analytics'], ACME.optOutFlag);
  assert.ok(quoted.kind === 'event');
  assert.equal(quoted.values.message, '--disable-analytics');
  assert.equal(resolveSettings(quoted.values, {}, ACME).disableFlag, undefined);
  const generic = parseInvocation(['start', '--disable-telemetry'], ACME.optOutFlag);
  assert.equal(generic.kind === 'event' && resolveSettings(generic.values, {}, ACME).disableFlag, '--disable-telemetry');
});

test("an event opted out by the vendor's names starts no --background child", async (t) => {
  const spawned: (readonly string[])[] = [];
  const state = tempDir(t);
  const run = (argv: string[], env: Record<string, string>) =>
    main([...argv, '--state-dir', state, '--config-dir', state, '--root', state], fakeContext({ vendor: ACME, env, spawnDetached: (args) => void spawned.push(args) }));
  assert.equal(await run(['start', '--background'], { WERF_TELEMETRY: 'off' }), 0);
  assert.equal(await run(['start', '--background', '--disable-analytics'], {}), 0);
  assert.equal(await run(['start', '--background'], { ACME_NO_ANALYTICS: '0' }), 0);
  assert.deepEqual(spawned, []);
  // The spy does see a run that goes on.
  assert.equal(await run(['start', '--background'], { WERF_TELEMETRY: '1' }), 0);
  assert.equal(spawned.length, 1);
});

test("the first-run notice and usage errors use the product's command and its own variable", async (t) => {
  const server = await endpoint(t);
  const state = tempDir(t);
  const root = makeRoot(t, { 'etc/os-release': 'ID=debian\n' });
  const ctx = fakeContext({ vendor: ACME, stderrIsTTY: () => true });
  assert.equal(await main(['start', '--endpoint', server.url, '--state-dir', state, '--config-dir', path.join(state, 'config'), '--root', root], ctx), 0);
  assert.equal(server.requests.length, 0, 'the run that tells sends nothing');
  assert.match(ctx.err.join(''), /Opt out with ACME_NO_ANALYTICS=1, or: acme disable /);
  assert.doesNotMatch(ctx.err.join(''), /anonymous-statistics/);

  const usage = fakeContext({ vendor: ACME });
  assert.equal(await main(['launch'], usage), 2);
  assert.deepEqual(usage.err, ['acme: unknown command "launch" (see acme --help)\n']);
});
