import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { connectEarly, post } from '../../../../src/after-consent/deliver/transport.ts';
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

/** A receiver on 127.0.0.1 that answers 200 and counts the connections it accepted. */
async function countingReceiver(t: TestContext) {
  const accepted: Socket[] = [];
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => response.writeHead(200).end('{"status":1}'));
  });
  server.on('connection', (socket: Socket) => accepted.push(socket));
  const firstConnection = once(server, 'connection').then(([socket]) => socket as Socket);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/capture/`), accepted, firstConnection };
}

test('an early connection carries the request to its origin: one connection, not two', async (t) => {
  const receiver = await countingReceiver(t);
  const early = connectEarly(receiver.url, undefined, 3000);
  assert.equal(await post({ url: receiver.url, body: '{}', budgetMs: 3000, userAgent: 'test', early }), 200);
  assert.equal(receiver.accepted.length, 1);
});

test('an early connection is not taken for another origin, nor twice; closing it closes it at the receiver', async (t) => {
  const [first, second] = [await countingReceiver(t), await countingReceiver(t)];
  const early = connectEarly(first.url, undefined, 3000);
  assert.equal(await post({ url: second.url, body: '{}', budgetMs: 3000, userAgent: 'test', early }), 200);
  assert.equal(second.accepted.length, 1);
  assert.equal(early.take(second.url, undefined), undefined, 'another origin');
  assert.ok(early.take(first.url, new URL('http://127.0.0.1:9')) === undefined, 'another way there');
  const closed = once(await first.firstConnection, 'close');
  early.close();
  await closed;
});

test('an early connection that failed before its request is not used: the request opens its own and reports its error at once, not at the deadline', async () => {
  const nothingListens = new URL('http://127.0.0.1:1/capture/');
  const early = connectEarly(nothingListens, undefined, 10_000);
  // Another connection to the same closed port fails no sooner than the early one did.
  await once(connect(1, '127.0.0.1'), 'error');
  const started = performance.now();
  await assert.rejects(post({ url: nothingListens, body: '{}', budgetMs: 10_000, userAgent: 'test', early }), (error: Error) => error instanceof NetworkError && /ECONNREFUSED/.test(error.message));
  assert.ok(performance.now() - started < 1500, `took ${Math.round(performance.now() - started)} ms`);
});
