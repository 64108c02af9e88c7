import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { bypassesProxy, proxyFor } from '../../../../src/after-consent/deliver/proxy.ts';
import { endpoint, makeRoot, PROJECT_DIR, runBundle, tempDir } from '../../../support/helpers.ts';
import { startProxy } from '../../../support/proxy-server.ts';
import { issueCertificates } from '../../../support/test-ca.ts';

const https = new URL('https://telemetry.example.com/capture/');

/** Every variable any client reads for a proxy, all pointing at one. */
const EVERY_PROXY_VARIABLE = Object.fromEntries(['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'].map((name) => [name, 'http://proxy.corp:3128']));

test('the proxy for https: comes from https_proxy, then HTTPS_PROXY, then all_proxy; lowercase first', () => {
  assert.equal(proxyFor(https, { HTTPS_PROXY: 'http://upper:3128' })?.href, 'http://upper:3128/');
  assert.equal(proxyFor(https, { https_proxy: 'http://lower:3128', HTTPS_PROXY: 'http://upper:3128' })?.href, 'http://lower:3128/');
  assert.equal(proxyFor(https, { ALL_PROXY: 'proxy.corp:8080' })?.href, 'http://proxy.corp:8080/', 'no scheme means http://');
  assert.equal(proxyFor(https, { http_proxy: 'http://only-for-http:3128' }), undefined);
});

test('a loopback endpoint is never proxied, whatever http_proxy, https_proxy and all_proxy say', () => {
  const loopback = [
    'http://127.0.0.1:8000/capture/',
    'http://127.9.8.7/',
    'http://2130706433/', // the URL parser makes it 127.0.0.1
    'http://localhost:8000/',
    'http://LOCALHOST/',
    'http://[::1]:8000/',
    'http://[0:0:0:0:0:0:0:1]/',
    'http://[::ffff:127.0.0.1]/',
    'https://127.0.0.1/',
    'https://localhost:8443/',
    'https://[::1]/',
  ];
  for (const url of loopback) assert.equal(proxyFor(new URL(url), EVERY_PROXY_VARIABLE), undefined, url);
});

test('a name or address that only looks local is proxied like any other', () => {
  for (const url of ['https://localhost.example.com/', 'https://127.0.0.1.nip.example/', 'https://10.0.0.1/', 'https://[::2]/']) {
    assert.equal(proxyFor(new URL(url), EVERY_PROXY_VARIABLE)?.host, 'proxy.corp:3128', url);
  }
});

test("NO_PROXY matches curl's way: *, names with their subdomains, leading dots, IPs, IPv4 CIDR", () => {
  assert.equal(bypassesProxy('telemetry.example.com', '*'), true);
  assert.equal(bypassesProxy('telemetry.example.com', 'example.com'), true);
  assert.equal(bypassesProxy('telemetry.example.com', '.example.com'), true);
  assert.equal(bypassesProxy('telemetry.example.com', 'other.com, example.com:443'), true);
  assert.equal(bypassesProxy('notexample.com', 'example.com'), false, 'a suffix must end at a dot');
  assert.equal(bypassesProxy('127.0.0.1', '127.0.0.0/8'), true);
  assert.equal(bypassesProxy('128.0.0.1', '127.0.0.0/8'), false);
  assert.equal(bypassesProxy('[::1]', '::1'), true);
  assert.equal(bypassesProxy('[::1]', '[::1]:8080'), true);
  assert.equal(bypassesProxy('telemetry.example.com', ''), false);
  assert.equal(proxyFor(https, { https_proxy: 'http://p:3128', no_proxy: 'example.com' }), undefined);
  assert.equal(proxyFor(https, { https_proxy: 'http://p:3128', NO_PROXY: 'example.com' }), undefined);
});

/*
 * The built file through a proxy on 127.0.0.1. The receiver's name, telemetry.test, resolves
 * nowhere but in the proxy (RFC 2606 keeps .test out of the real DNS), and the loopback-only trap
 * refuses (and records) any lookup or connection the run makes to it itself: an event can only
 * arrive through the tunnel.
 */
const NAME = 'telemetry.test';

async function proxiedReceiver(t: TestContext, certificateName = NAME) {
  const dir = tempDir(t);
  const certificates = issueCertificates(dir, certificateName);
  const server = await endpoint(t, { kind: 'accept' }, { tls: certificates });
  const proxy = await startProxy({ names: { [NAME]: '127.0.0.1' } });
  t.after(() => proxy.close());
  const root = makeRoot(t, { 'etc/os-release': 'ID=debian\nVERSION_ID="12"\n' });
  const trapLog = path.join(dir, 'trap.log');
  const url = `https://${NAME}:${new URL(server.url).port}`;
  const stateDir = (name: string) => path.join(dir, name);
  const run = (args: string[], env: Record<string, string>, state = 'state') =>
    // A key of its own: the example build's placeholder key is sent to loopback endpoints only.
    runBundle([...args, '--endpoint', url, '--api-key', 'phc_proxy_test', '--state-dir', stateDir(state), '--config-dir', dir, '--root', root], { TRAP_LOG: trapLog, ...env });
  const queued = async (state = 'state') => JSON.parse((await runBundle(['status', '--json', '--state-dir', stateDir(state), '--config-dir', dir])).stdout).queued_events as number;
  const trapped = () => {
    try {
      return readFileSync(trapLog, 'utf8');
    } catch {
      return '';
    }
  };
  return { server, proxy, caFile: certificates.caFile, url, run, queued, trapped };
}

test('HTTPS_PROXY: an event to a name only the proxy resolves goes through the CONNECT tunnel, certificate verified, no lookup of its own', async (t) => {
  const { server, proxy, caFile, url, run, queued, trapped } = await proxiedReceiver(t);
  const result = await run(['start'], { HTTPS_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: caFile });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(trapped(), '', 'the run resolved or connected to the receiver itself');
  assert.deepEqual(proxy.seen, [`CONNECT ${new URL(url).host}`]);
  assert.deepEqual(server.events().map((event) => event.event), ['start']);
  assert.equal(await queued(), 0);
});

test('flush sends the queue to /batch/ through the tunnel', async (t) => {
  const { server, proxy, caFile, run, queued, trapped } = await proxiedReceiver(t);
  server.setBehavior({ kind: 'status', status: 503 });
  for (const command of [['start'], ['stop', '--exit-code', '3']]) assert.equal((await run([...command, '--timeout', '800'], { ALL_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: caFile })).code, 0);
  assert.equal(await queued(), 2);
  server.setBehavior({ kind: 'accept' });
  const flushed = await run(['flush'], { ALL_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: caFile });
  assert.equal(flushed.code, 0, flushed.stderr);
  assert.equal(trapped(), '');
  const batch = server.requests.at(-1);
  assert.equal(batch?.path, '/batch/');
  assert.equal(batch?.status, 200);
  assert.deepEqual(server.events().map((event) => event.event).sort(), ['start', 'stop']);
  assert.ok(proxy.seen.every((line) => line.startsWith(`CONNECT ${NAME}:`)));
  assert.equal(await queued(), 0);
});

test('through the tunnel the certificate is still checked: an unknown CA or another name sends nothing, the event stays queued', async (t) => {
  const unknownCa = await proxiedReceiver(t);
  assert.equal((await unknownCa.run(['start'], { https_proxy: unknownCa.proxy.url })).code, 0);
  const otherName = await proxiedReceiver(t, 'other.test');
  assert.equal((await otherName.run(['start'], { https_proxy: otherName.proxy.url, NODE_EXTRA_CA_CERTS: otherName.caFile })).code, 0);
  for (const { server, proxy, queued, trapped } of [unknownCa, otherName]) {
    assert.ok(proxy.seen.length >= 1, 'the tunnel was opened');
    assert.deepEqual(server.requests, [], 'but no request went through it');
    assert.equal(await queued(), 1);
    assert.equal(trapped(), '');
  }
});

test('an unsupported proxy scheme (socks5://) is not gone around: nothing is sent, the event is queued', async (t) => {
  const { server, run, queued, trapped } = await proxiedReceiver(t);
  assert.equal((await run(['start'], { https_proxy: 'socks5://127.0.0.1:1080' })).code, 0);
  assert.equal(trapped(), '', 'no direct attempt');
  assert.deepEqual(server.requests, []);
  assert.equal(await queued(), 1);
});

test('NO_PROXY sends a matching name around the proxy, as curl does', async (t) => {
  const { proxy, run, trapped } = await proxiedReceiver(t);
  const forms = [NAME, '*', '.test', `other.example, ${NAME}:443`];
  for (const [index, noProxy] of forms.entries()) {
    assert.equal((await run(['start', '--timeout', '500'], { https_proxy: proxy.url, NO_PROXY: noProxy }, `state-${index}`)).code, 0);
  }
  assert.deepEqual(proxy.seen, []);
  const directLookups = trapped().split('\n').filter((line) => line === `lookup ${NAME}`);
  assert.ok(directLookups.length >= forms.length, 'each run went direct (and the trap stopped its lookup)');
});

test('a loopback endpoint goes direct whatever the proxy variables say: the proxy sees nothing', async (t) => {
  const proxy = await startProxy();
  t.after(() => proxy.close());
  const tls = {
    key: readFileSync(path.join(PROJECT_DIR, 'test/fixtures/tls/localhost.key'), 'utf8'),
    cert: readFileSync(path.join(PROJECT_DIR, 'test/fixtures/tls/localhost.crt'), 'utf8'),
  };
  const plain = await endpoint(t);
  const secure = await endpoint(t, { kind: 'accept' }, { tls });
  const dir = tempDir(t);
  const env = { ...Object.fromEntries(Object.keys(EVERY_PROXY_VARIABLE).map((name) => [name, proxy.url])), NODE_EXTRA_CA_CERTS: path.join(PROJECT_DIR, 'test/fixtures/tls/localhost.crt') };
  const targets = [plain.url, secure.url, secure.url.replace('127.0.0.1', 'localhost')];
  for (const url of targets) {
    const result = await runBundle(['start', '--endpoint', url, '--state-dir', path.join(dir, 'state'), '--config-dir', dir, '--root', makeRoot(t, {})], env);
    assert.equal(result.code, 0, result.stderr);
  }
  assert.deepEqual(proxy.seen, []);
  assert.equal(plain.events().length, 1);
  assert.equal(secure.events().length, 2);
});
