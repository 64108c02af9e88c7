import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../../../src/before-consent/errors.ts';
import { resolveSettings } from '../../../../src/before-consent/config/settings.ts';
import { fakeContext } from '../../../support/helpers.ts';

const { vendor } = fakeContext();
const usage = (pattern: RegExp) => (error: unknown) => error instanceof UsageError && pattern.test(error.message);

test('a flag beats its environment variable, which beats the build-time default', () => {
  assert.equal(resolveSettings({}, {}, vendor).configDir, vendor.configDir);
  const install = { file: '/lib/x/anonymous-statistics.json', configDir: '/opt/x/etc', stateDir: '/opt/x/var' };
  assert.equal(resolveSettings({}, {}, vendor, install).configDir, '/opt/x/etc', "the installer's file beats the build");
  assert.equal(resolveSettings({}, { TELEMETRY_STATE_DIR: '/env/state' }, vendor, install).stateDir, '/env/state', "a variable beats the installer's file");
  assert.equal(resolveSettings({}, { TELEMETRY_CONFIG_DIR: '/env/dir' }, vendor).configDir, '/env/dir');
  assert.equal(resolveSettings({ 'config-dir': '/flag/dir' }, { TELEMETRY_CONFIG_DIR: '/env/dir' }, vendor).configDir, '/flag/dir');
  assert.equal(resolveSettings({}, { TELEMETRY_TIMEOUT_MS: '750' }, vendor).timeoutMs, 750);
  assert.equal(resolveSettings({ timeout: '300' }, { TELEMETRY_TIMEOUT_MS: '750' }, vendor).timeoutMs, 300);
  assert.equal(resolveSettings({}, {}, vendor).timeoutMs, 2000);
});

test('http: is accepted only for loopback hosts', () => {
  for (const url of ['http://127.0.0.1:9', 'http://127.9.9.9/capture/', 'http://[::1]:8000', 'http://localhost:8000', 'https://eu.i.posthog.com']) {
    assert.equal(resolveSettings({ endpoint: url }, {}, vendor).endpoint.href, new URL(url).href);
  }
  for (const url of ['http://10.0.0.1', 'http://192.168.1.1:80', 'http://example.com', 'http://[fe80::1]', 'http://127.0.0.1.nip.io', 'http://0.0.0.0']) {
    assert.throws(() => resolveSettings({ endpoint: url }, {}, vendor), usage(/--endpoint uses http: for a non-loopback host/), url);
  }
});

test('a bad endpoint from the environment is named as such', () => {
  assert.throws(() => resolveSettings({}, { TELEMETRY_ENDPOINT: 'not a url' }, vendor), usage(/^TELEMETRY_ENDPOINT is not a valid URL/));
  assert.throws(() => resolveSettings({}, { TELEMETRY_ENDPOINT: 'ftp://x' }, vendor), usage(/must be an https: URL/));
});

test('a timeout must be a positive whole number of milliseconds', () => {
  for (const bad of ['-5', '0', 'abc', '1.5', '']) {
    assert.throws(() => resolveSettings({ timeout: bad }, {}, vendor), usage(/--timeout/), bad);
  }
});
