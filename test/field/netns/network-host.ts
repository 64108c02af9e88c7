/**
 * One host of the proxy-only network test, run inside a network namespace by
 * proxy-only-network.test.ts (`ip netns exec NS node --import tsx network-host.ts CONFIG`).
 * It serves what CONFIG asks for: a DNS listener that records every query and answers NXDOMAIN,
 * a CONNECT proxy that alone resolves the receiver's name, capture receivers on 127.0.0.1.
 *
 * It talks JSON lines: `{"ready":true}` once listening; then one answer per line read on
 * stdin: `state` -> `{"state":{...}}` (everything seen so far), `proxy-down` / `proxy-up` ->
 * `{"done":...}` once the proxy has stopped or is listening again.
 */
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { startEndpoint, type Endpoint } from '../../../scripts/endpoint.ts';
import { startProxy, type TestProxy } from '../../support/proxy-server.ts';

export interface HostConfig {
  dns?: { host: string };
  proxy?: { host: string; port: number; names: Record<string, string> };
  receivers?: { port: number; tls?: { keyFile: string; certFile: string } }[];
}

export interface HostState {
  /** Every request line the proxy was sent, across restarts. */
  proxy: string[];
  /** The name asked in every DNS query. */
  dns: string[];
  received: { port: number; path: string; status: number; events: Record<string, any>[] }[];
}

/** The question's name, read label by label (the test's resolver never compresses a query). */
function queryName(packet: Buffer): { name: string; questionEnd: number } {
  const labels: string[] = [];
  let offset = 12;
  while (offset < packet.length && packet[offset] !== 0) {
    labels.push(packet.subarray(offset + 1, offset + 1 + packet[offset]).toString('latin1'));
    offset += 1 + packet[offset];
  }
  return { name: labels.join('.'), questionEnd: offset + 1 + 4 };
}

/** NXDOMAIN for the one question asked, so a resolver gives up at once instead of timing out. */
function nxdomain(query: Buffer, questionEnd: number): Buffer {
  const header = Buffer.from([query[0], query[1], 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, query.subarray(12, questionEnd)]);
}

async function main(config: HostConfig): Promise<void> {
  const state: HostState = { proxy: [], dns: [], received: [] };
  if (config.dns) {
    const dns = createSocket('udp4');
    dns.on('message', (packet, from) => {
      const { name, questionEnd } = queryName(packet);
      state.dns.push(name);
      dns.send(nxdomain(packet, questionEnd), from.port, from.address);
    });
    await new Promise<void>((resolve) => dns.bind(53, config.dns?.host, resolve));
  }
  const receivers: { port: number; endpoint: Endpoint }[] = [];
  for (const { port, tls } of config.receivers ?? []) {
    const options = tls ? { key: readFileSync(tls.keyFile, 'utf8'), cert: readFileSync(tls.certFile, 'utf8') } : undefined;
    receivers.push({ port, endpoint: await startEndpoint({ kind: 'accept' }, { port, tls: options }) });
  }
  let proxy: TestProxy | undefined;
  let proxySeenBefore: string[] = [];
  const proxyUp = async () => {
    if (config.proxy && !proxy) proxy = await startProxy(config.proxy);
  };
  const proxyDown = async () => {
    if (!proxy) return;
    proxySeenBefore = [...proxySeenBefore, ...proxy.seen];
    await proxy.close();
    proxy = undefined;
  };
  await proxyUp();

  const say = (message: unknown) => void process.stdout.write(`${JSON.stringify(message)}\n`);
  const commands: Record<string, () => Promise<unknown>> = {
    state: async () => ({
      state: {
        ...state,
        proxy: [...proxySeenBefore, ...(proxy?.seen ?? [])],
        received: receivers.flatMap(({ port, endpoint }) => endpoint.requests.map(({ path, status, events }) => ({ port, path, status, events }))),
      },
    }),
    'proxy-down': async () => (await proxyDown(), { done: 'proxy-down' }),
    'proxy-up': async () => (await proxyUp(), { done: 'proxy-up' }),
  };
  // One command at a time, in order, so each answer follows its question.
  let pending = Promise.resolve();
  createInterface({ input: process.stdin }).on('line', (line) => {
    pending = pending.then(async () => say(commands[line.trim()] ? await commands[line.trim()]() : { error: `unknown command ${line}` }));
  });
  // The test ending (or dying) closes stdin: then this host ends too.
  process.stdin.on('end', () => process.exit(0));
  say({ ready: true });
}

main(JSON.parse(process.argv[2] ?? '{}') as HostConfig).catch((error) => {
  process.stdout.write(`${JSON.stringify({ error: String(error?.stack ?? error) })}\n`);
  process.exit(1);
});
