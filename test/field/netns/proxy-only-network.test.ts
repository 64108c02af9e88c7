/**
 * The built file on a network whose only way out is an HTTP proxy, as in a locked-down data
 * centre: `npm run test:proxy-netns` (root, Linux, iproute2 and openssl).
 *
 * Two network namespaces made here, joined by one veth pair and nothing else:
 *   client (10.203.0.2/30): the product. No default route; its resolv.conf names the DNS
 *       listener below, so any lookup it makes is seen.
 *   edge (10.203.0.1/30): the DNS listener (records queries, answers NXDOMAIN), the HTTP proxy
 *       on :3128 (the only one that resolves telemetry.test), and the https: receiver on the
 *       edge's own 127.0.0.1:443, which the client cannot reach by any route.
 * The receiver's certificate comes from a CA made here with openssl, given to the product with
 * NODE_EXTRA_CA_CERTS. No address outside these two namespaces is ever used.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import { BUNDLE, makeRoot, NODE_UNDER_TEST, PROJECT_DIR, runBundle, tempDir, type CliResult } from '../../support/helpers.ts';
import { issueCertificates } from '../../support/test-ca.ts';
import type { HostConfig, HostState } from './network-host.ts';

const EDGE_ADDRESS = '10.203.0.1';
const CLIENT_ADDRESS = '10.203.0.2';
const PROXY_URL = `http://${EDGE_ADDRESS}:3128`;
const NAME = 'telemetry.test';
const ENDPOINT = `https://${NAME}`;
const FIXTURE_TLS = {
  keyFile: path.join(PROJECT_DIR, 'test/fixtures/tls/localhost.key'),
  certFile: path.join(PROJECT_DIR, 'test/fixtures/tls/localhost.crt'),
};

/** Why this machine cannot build the network, or undefined when it can. */
function missingRequirement(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'ip netns add needs root';
  for (const [tool, versionFlag, apt] of [['ip', '-V', 'iproute2'], ['openssl', 'version', 'openssl']]) {
    if (spawnSync(tool, [versionFlag], { stdio: 'ignore' }).error) return `${tool} is missing (apt-get install ${apt})`;
  }
  return undefined;
}

function sh(command: string, ...args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The two namespaces and the veth pair between them; removed when the test ends, pass or fail. */
function makeNetwork(t: TestContext): { client: string; edge: string } {
  const client = `as-client-${process.pid}`;
  const edge = `as-edge-${process.pid}`;
  for (const namespace of [client, edge]) {
    sh('ip', 'netns', 'add', namespace);
    t.after(() => spawnSync('ip', ['netns', 'del', namespace]));
  }
  sh('ip', '-n', client, 'link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'downlink', 'netns', edge);
  sh('ip', '-n', client, 'addr', 'add', `${CLIENT_ADDRESS}/30`, 'dev', 'uplink');
  sh('ip', '-n', edge, 'addr', 'add', `${EDGE_ADDRESS}/30`, 'dev', 'downlink');
  for (const [namespace, link] of [[client, 'uplink'], [edge, 'downlink']]) {
    sh('ip', '-n', namespace, 'link', 'set', 'lo', 'up');
    sh('ip', '-n', namespace, 'link', 'set', link, 'up');
  }
  // `ip netns exec` mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf.
  const etc = path.join('/etc/netns', client);
  mkdirSync(etc, { recursive: true });
  t.after(() => rmSync(etc, { recursive: true, force: true }));
  writeFileSync(path.join(etc, 'resolv.conf'), `nameserver ${EDGE_ADDRESS}\noptions attempts:1 timeout:1\n`);
  return { client, edge };
}

interface Host {
  /** Everything the host has seen so far. */
  state(): Promise<HostState>;
  /** Resolves once its proxy is listening again, or has stopped. */
  setProxy(up: boolean): Promise<void>;
}

/** network-host.ts inside `namespace`, answering one JSON line per command. */
async function startHost(t: TestContext, namespace: string, config: HostConfig): Promise<Host> {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', namespace, process.execPath, '--import', 'tsx', path.join(__dirname, 'network-host.ts'), JSON.stringify(config)], {
    cwd: PROJECT_DIR,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.after(async () => {
    child.stdin?.end();
    child.kill();
    await exited;
  });
  const waiting: ((message: Record<string, any>) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => waiting.shift()?.(JSON.parse(line)));
  void exited.then(() => {
    for (const resolve of waiting.splice(0)) resolve({ error: `the host in ${namespace} exited` });
  });
  const next = () => new Promise<Record<string, any>>((resolve) => waiting.push(resolve));
  const ready = await next();
  if (!ready.ready) throw new Error(`the host in ${namespace} did not start: ${ready.error}`);
  const ask = async (command: string) => {
    const answer = next();
    child.stdin?.write(`${command}\n`);
    const message = await answer;
    if (message.error) throw new Error(message.error);
    return message;
  };
  return {
    state: async () => (await ask('state')).state,
    setProxy: async (up) => void (await ask(up ? 'proxy-up' : 'proxy-down')),
  };
}

/** The built file, run with node inside `namespace`, with nothing but PATH and `env`. */
function runInNamespace(namespace: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', namespace, NODE_UNDER_TEST, BUNDLE, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, timeout: 20000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** Node's own connect from inside `namespace`: the error code, or 'connected'. */
function probe(namespace: string, host: string, port: number): string {
  const script = `require('net').connect(${port}, '${host}').on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); }).setTimeout(2000, () => { console.log('ETIMEDOUT'); process.exit(0); });`;
  return sh('ip', 'netns', 'exec', namespace, process.execPath, '-e', script).trim();
}

const eventNames = (requests: HostState['received']) => requests.flatMap((request) => request.events.map((event) => event.event as string));

test('the product on a network whose only way out is an HTTP proxy', async (t) => {
  const started = performance.now();
  const missing = missingRequirement();
  if (missing) {
    if (process.env.CI && process.env.CI !== 'false') assert.fail(`CI must run the proxy-only network test, but ${missing}`);
    t.skip(`${missing}; run it as root on Linux: npm run test:proxy-netns`);
    return;
  }
  const network = makeNetwork(t);
  const dir = tempDir(t);
  const certificates = issueCertificates(dir, NAME);
  const edge = await startHost(t, network.edge, {
    dns: { host: EDGE_ADDRESS },
    proxy: { host: EDGE_ADDRESS, port: 3128, names: { [NAME]: '127.0.0.1' } },
    receivers: [{ port: 443, tls: { keyFile: certificates.keyFile, certFile: certificates.certFile } }],
  });
  const client = await startHost(t, network.client, { receivers: [{ port: 8080 }, { port: 8443, tls: FIXTURE_TLS }] });
  const root = makeRoot(t, { 'etc/os-release': 'ID=debian\nVERSION_ID="12"\n', 'etc/machine-id': '00112233445566778899aabbccddeeff\n' });
  let cases = 0;
  /** Each case its own state dir, so no back-off or queue carries over from another. */
  const product = (env: Record<string, string>, endpoint = ENDPOINT) => {
    const stateDir = path.join(dir, `state-${++cases}`);
    // A key of its own: the example build's placeholder key is sent to loopback endpoints only.
    const run = (...args: string[]) => runInNamespace(network.client, [...args, '--endpoint', endpoint, '--api-key', 'phc_netns_test', '--state-dir', stateDir, '--config-dir', dir, '--root', root], env);
    const queued = async () => JSON.parse((await runBundle(['status', '--json', '--state-dir', stateDir, '--config-dir', dir])).stdout).queued_events as number;
    return { run, queued };
  };
  const proxiedDnsQueries: string[] = [];
  const throughProxy = { newEvent: 0, batch: 0 };

  await t.test("the receiver cannot be reached from the product's namespace except through the proxy", async () => {
    assert.doesNotMatch(sh('ip', '-n', network.client, 'route', 'show'), /default/, 'no default route');
    assert.equal(probe(network.client, EDGE_ADDRESS, 3128), 'connected', 'the proxy is reachable (the probe works)');
    assert.equal(probe(network.client, EDGE_ADDRESS, 443), 'ECONNREFUSED', "the receiver is not on the edge's veth address");
    assert.equal(probe(network.client, '127.0.0.1', 443), 'ECONNREFUSED', "nor on the client's own loopback");
    const direct = product({ NODE_EXTRA_CA_CERTS: certificates.caFile });
    const before = await edge.state();
    const result = await direct.run('start');
    assert.equal(result.code, 0, result.stderr);
    const after = await edge.state();
    assert.ok(after.dns.slice(before.dns.length).includes(NAME), 'without a proxy the product looked the name up (the DNS listener sees queries)');
    assert.deepEqual(after.received, [], 'and reached nothing');
    assert.deepEqual(after.proxy, []);
    assert.equal(await direct.queued(), 1);
  });

  await t.test('a new event goes through the CONNECT tunnel with the certificate verified, and no DNS query', async () => {
    const start = product({ https_proxy: PROXY_URL, NODE_EXTRA_CA_CERTS: certificates.caFile });
    const before = await edge.state();
    const result = await start.run('start');
    assert.equal(result.code, 0, result.stderr);
    const after = await edge.state();
    proxiedDnsQueries.push(...after.dns.slice(before.dns.length));
    assert.deepEqual(after.dns.slice(before.dns.length), [], 'the proxy resolved the name, not the product');
    assert.deepEqual(after.proxy.slice(before.proxy.length), [`CONNECT ${NAME}:443`]);
    const received = after.received.slice(before.received.length);
    assert.deepEqual(received.map(({ path: where, status }) => `${where} ${status}`), ['/capture/ 200']);
    assert.deepEqual(eventNames(received), ['start']);
    throughProxy.newEvent = eventNames(received).length;
    assert.equal(await start.queued(), 0);
  });

  await t.test('without the test CA nothing is sent through the tunnel: the event stays queued', async () => {
    const untrusted = product({ https_proxy: PROXY_URL });
    const before = await edge.state();
    assert.equal((await untrusted.run('start')).code, 0);
    const after = await edge.state();
    proxiedDnsQueries.push(...after.dns.slice(before.dns.length));
    assert.ok(after.proxy.length > before.proxy.length, 'the tunnel was opened');
    assert.deepEqual(after.received.slice(before.received.length), [], 'but the TLS handshake refused the receiver');
    assert.equal(await untrusted.queued(), 1);
  });

  await t.test('events queued while the proxy was down go to /batch/ through the tunnel on flush', async () => {
    await edge.setProxy(false);
    const offline = product({ https_proxy: PROXY_URL, NODE_EXTRA_CA_CERTS: certificates.caFile });
    const before = await edge.state();
    assert.equal((await offline.run('stop', '--exit-code', '3')).code, 0);
    assert.equal((await offline.run('cloud-unavailable', '--reason', 'proxy down')).code, 0);
    assert.equal(await offline.queued(), 2, 'queued while the proxy was down');
    await edge.setProxy(true);
    const flushed = await offline.run('flush');
    assert.equal(flushed.code, 0, flushed.stderr);
    const after = await edge.state();
    proxiedDnsQueries.push(...after.dns.slice(before.dns.length));
    assert.deepEqual(after.dns.slice(before.dns.length), []);
    assert.deepEqual(after.proxy.slice(before.proxy.length), [`CONNECT ${NAME}:443`]);
    const received = after.received.slice(before.received.length);
    assert.deepEqual(received.map(({ path: where, status }) => `${where} ${status}`), ['/batch/ 200']);
    assert.deepEqual(eventNames(received).sort(), ['cloud-unavailable', 'stop']);
    assert.equal(received[0].events.find((event) => event.event === 'stop')?.properties.exit_code, 3);
    throughProxy.batch = eventNames(received).length;
    assert.equal(await offline.queued(), 0);
  });

  await t.test('a loopback endpoint in the namespace goes direct whatever the proxy variables say', async () => {
    const everyProxyVariable = Object.fromEntries(['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'].map((name) => [name, PROXY_URL]));
    const edgeBefore = await edge.state();
    for (const endpoint of ['http://127.0.0.1:8080', 'https://localhost:8443']) {
      const local = product({ ...everyProxyVariable, NODE_EXTRA_CA_CERTS: FIXTURE_TLS.certFile }, endpoint);
      const result = await local.run('start');
      assert.equal(result.code, 0, result.stderr);
      assert.equal(await local.queued(), 0, endpoint);
    }
    assert.deepEqual((await edge.state()).proxy, edgeBefore.proxy, 'the proxy saw nothing');
    assert.deepEqual(
      (await client.state()).received.map(({ port, events }) => `${port} ${events.map((event) => event.event).join(' ')}`),
      ['8080 start', '8443 start'],
    );
  });

  t.diagnostic(
    `through the proxy: new event ${throughProxy.newEvent}, flush batch ${throughProxy.batch}; DNS queries while proxied: ${proxiedDnsQueries.length}; product on Node ${spawnSync(NODE_UNDER_TEST, ['--version'], { encoding: 'utf8' }).stdout?.trim() || NODE_UNDER_TEST}; ${Math.round(performance.now() - started)} ms`,
  );
});
