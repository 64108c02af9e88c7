import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { post } from '../../../../src/after-consent/deliver/transport.ts';
import { NetworkError } from '../../../../src/after-consent/deliver/errors.ts';

/**
 * post() against a proxy that answers CONNECT as each test scripts it. The target is
 * 127.0.0.1:1, where nothing listens: whatever happens, no name is looked up and nothing
 * leaves the machine.
 */
async function scriptedProxy(t: TestContext, onConnect: (request: IncomingMessage, socket: Socket) => void) {
  const seen: IncomingMessage[] = [];
  const server = createServer((request, response) => {
    seen.push(request);
    response.writeHead(403).end();
  });
  server.on('connect', (request: IncomingMessage, socket: Socket) => {
    seen.push(request);
    socket.on('error', () => socket.destroy());
    onConnect(request, socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: new URL(`http://user:p%40ss@127.0.0.1:${(server.address() as AddressInfo).port}`), seen };
}

const target = new URL('https://127.0.0.1:1/capture/');
const send = (proxy: URL, url = target) => post({ url, body: '{}', budgetMs: 3000, userAgent: 'test', proxy });

test('a proxy that refuses the tunnel is a NetworkError naming its answer; the credentials go in Proxy-Authorization', async (t) => {
  const proxy = await scriptedProxy(t, (_request, socket) => socket.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n'));
  await assert.rejects(send(proxy.url), (error: Error) => error instanceof NetworkError && /407/.test(error.message));
  assert.equal(proxy.seen[0].url, '127.0.0.1:1');
  assert.equal(proxy.seen[0].headers['proxy-authorization'], `Basic ${Buffer.from('user:p@ss').toString('base64')}`);
});

test('bytes the proxy sends with its 200 reach TLS: a tunnel to something that is not TLS fails at once, not at the deadline', async (t) => {
  const proxy = await scriptedProxy(t, (_request, socket) => socket.write('HTTP/1.1 200 Connection Established\r\n\r\nSSH-2.0-not-tls\r\n'));
  const started = performance.now();
  await assert.rejects(send(proxy.url), (error: Error) => error instanceof NetworkError);
  assert.ok(performance.now() - started < 1500, `took ${Math.round(performance.now() - started)} ms`);
});

test('a tunnel that is reset during the TLS handshake is a NetworkError', async (t) => {
  const proxy = await scriptedProxy(t, (_request, socket) => {
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    socket.once('data', () => socket.resetAndDestroy());
  });
  await assert.rejects(send(proxy.url), (error: Error) => error instanceof NetworkError);
});

test('an http: request is never handed to a proxy', async (t) => {
  const proxy = await scriptedProxy(t, (_request, socket) => socket.end('HTTP/1.1 200 Connection Established\r\n\r\n'));
  await assert.rejects(send(proxy.url, new URL('http://127.0.0.1:1/capture/')), (error: Error) => error instanceof NetworkError);
  assert.deepEqual(proxy.seen, []);
});
