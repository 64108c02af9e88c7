import type http from 'node:http';
import type { Socket } from 'node:net';
import { BudgetSpentError, HttpError, NetworkError, TimeoutError } from './errors.ts';

export interface PostOptions {
  url: URL;
  body: string | Buffer;
  /** Milliseconds left in the run's budget: proxy, connect, TLS, sending and the answer all fit inside it. */
  budgetMs: number;
  userAgent: string;
  /** The body is gzip: sent with Content-Encoding: gzip. */
  gzip?: boolean;
  /** An http:// proxy that an https: request is tunnelled through (CONNECT); the proxy resolves the name. */
  proxy?: URL;
  /** The sink's own headers (the vendor's OTLP headers), never the ones below. */
  headers?: Readonly<Record<string, string>>;
  /** Opened before the body was ready (connectEarly): used if it goes to the same place and still stands. */
  early?: EarlyConnection;
}

/** An answer body larger than this is not read further (PostHog answers a few bytes). */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * POST one body with Node's own http/https (TLS certificates verified, no keep-alive so the
 * process ends as soon as the answer is in). Resolves with the status on 2xx; rejects with
 * HttpError, NetworkError or TimeoutError. One abort signal bounds the proxy tunnel, DNS,
 * connect, TLS, headers and body together.
 *
 * Why not undici: measured here (npm run bench), undici's first request adds ~100 ms to a run
 * (its llhttp WebAssembly parser and the memory it maps), node:http ~6 ms; see README.
 */
export async function post({ url, body, budgetMs, userAgent, gzip, proxy, headers: extra, early }: PostOptions): Promise<number> {
  if (budgetMs <= 0) throw new BudgetSpentError('no time left in the budget');
  const signal = AbortSignal.timeout(budgetMs);
  const headers: http.OutgoingHttpHeaders = {
    ...extra,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'user-agent': userAgent,
    ...(gzip ? { 'content-encoding': 'gzip' } : {}),
  };
  let tunnel: Socket | undefined;
  const ready = early?.take(url, proxy);
  try {
    if (ready) {
      const socket = await ready;
      return await exchange(url.protocol === 'https:' ? httpsModule() : httpModule(), url, { headers, signal, createConnection: () => socket }, body);
    }
    if (!proxy) return await exchange(url.protocol === 'https:' ? httpsModule() : httpModule(), url, { headers, signal, agent: false }, body);
    if (url.protocol !== 'https:') throw new NetworkError(`only https: goes through a proxy, not ${url.protocol}`);
    const opened = await openTunnel(proxy, url, signal);
    tunnel = opened;
    // No agent at all: with one (even `agent: false`) Node opens a connection of its own to the
    // receiver and ignores createConnection, so the request would bypass the tunnel.
    return await exchange(httpsModule(), url, { headers, signal, createConnection: () => secure(url, opened) }, body);
  } catch (error) {
    throw classify(error as Error);
  } finally {
    tunnel?.destroy();
    if (ready) early?.close();
  }
}

/**
 * A connection to a receiver opened before the request is ready, so the TCP and TLS handshakes
 * (and a proxy's tunnel) are in flight while the event is built and written ahead.
 */
export interface EarlyConnection {
  /**
   * The socket for a request to `url` through `proxy`, once: undefined when it goes elsewhere,
   * was taken, or has already failed (the request then opens a connection of its own, whose
   * error says what is wrong).
   */
  take(url: URL, proxy: URL | undefined): Promise<Socket> | undefined;
  /** Closes it, taken or not; the run does at its end. */
  close(): void;
}

/** Opens a connection to `url`'s origin, through `proxy` (CONNECT) when given, bounded by the budget. */
export function connectEarly(url: URL, proxy: URL | undefined, budgetMs: number): EarlyConnection {
  const signal = AbortSignal.timeout(Math.max(1, budgetMs));
  const sockets: Socket[] = [];
  let failed = false;
  let taken = false;
  const kept = (socket: Socket) => {
    sockets.push(socket);
    // Its error is the request's to report, if it is taken; until then it only marks it unusable.
    socket.on('error', () => (failed = true));
    socket.on('close', () => (failed = true));
    return socket;
  };
  // new Promise: a connect that throws at once (bad options, a refused address) is a failed connection too.
  const opened = proxy
    ? openTunnel(proxy, url, signal).then((tunnel) => kept(secure(url, kept(tunnel))))
    : new Promise<Socket>((resolve) => resolve(kept(tcp(url)))).then(async (socket) => {
        if (url.protocol !== 'https:') return socket;
        // TLS is loaded and makes its context only once the SYN is out (the next tick sends it),
        // so the TCP handshake runs meanwhile: Node 18 and 20 parse their ~140 root certificates
        // for the first context, ~20 ms. TLS starts its own handshake when the socket connects.
        await new Promise((turned) => setImmediate(turned));
        return kept(secure(url, socket));
      });
  opened.catch(() => (failed = true));
  return {
    take(target, through) {
      if (taken || failed || target.origin !== url.origin || through?.href !== proxy?.href) return undefined;
      taken = true;
      return opened;
    },
    close() {
      failed = true;
      for (const socket of sockets) socket.destroy();
      opened.then((socket) => socket.destroy(), () => undefined);
    },
  };
}

/** TCP to `url`'s host, on its port or the scheme's. */
function tcp(url: URL): Socket {
  const net = require('node:net') as typeof import('node:net');
  return net.connect({ host: hostOf(url), port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)) });
}

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

/**
 * TLS to the receiver over `socket` (TCP to the receiver, or a proxy's tunnel), verified as https
 * does it: against the receiver's name (SNI and certificate check), with Node's CA store plus
 * NODE_EXTRA_CA_CERTS.
 */
function secure(url: URL, socket: Socket): Socket {
  const tls = require('node:tls') as typeof import('node:tls');
  const { isIP } = require('node:net') as typeof import('node:net');
  const host = hostOf(url);
  return tls.connect({ socket, host, servername: isIP(host) ? undefined : host });
}

/**
 * Loaded on first use: node:http (with net and streams) costs a run that only prints a dry run
 * ~5 ms, and node:https (with TLS) is needed only for https: endpoints.
 */
function httpModule(): typeof http {
  return require('node:http') as typeof import('node:http');
}

function httpsModule(): Pick<typeof http, 'request'> {
  return require('node:https') as typeof import('node:https');
}

function exchange(client: Pick<typeof http, 'request'>, target: URL, options: http.RequestOptions, body: string | Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = client.request(target, { method: 'POST', ...options }, (response) => {
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > MAX_RESPONSE_BYTES) response.destroy();
      });
      response.on('error', reject);
      response.on('close', () => {
        const status = response.statusCode ?? 0;
        if (status >= 200 && status <= 299) resolve(status);
        else reject(new HttpError(status, headerValue(response.headers['retry-after'])));
      });
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** A CONNECT tunnel to the receiver's name and port, opened by the proxy (which resolves the name). */
function openTunnel(proxy: URL, target: URL, signal: AbortSignal): Promise<Socket> {
  if (proxy.protocol !== 'http:') return Promise.reject(new NetworkError(`unsupported proxy scheme ${proxy.protocol} (only http:// proxies)`));
  const authority = `${target.hostname}:${target.port || 443}`;
  return new Promise((resolve, reject) => {
    const request = httpModule().request({
      host: proxy.hostname.replace(/^\[|\]$/g, ''),
      port: proxy.port || 80,
      method: 'CONNECT',
      path: authority,
      headers: { host: authority, ...proxyAuthorization(proxy) },
      agent: false,
      signal,
    });
    request.on('connect', (response, socket, head) => {
      if (response.statusCode === 200) {
        // Bytes that came in with the proxy's answer belong to the tunnel.
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      } else {
        socket.destroy();
        reject(new NetworkError(`proxy answered ${response.statusCode} to CONNECT`));
      }
    });
    request.on('error', reject);
    request.end();
  });
}

function proxyAuthorization(proxy: URL): http.OutgoingHttpHeaders {
  if (!proxy.username) return {};
  const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'proxy-authorization': `Basic ${Buffer.from(credentials).toString('base64')}` };
}

function classify(error: Error): Error {
  if (error instanceof HttpError || error instanceof NetworkError || error instanceof TimeoutError) return error;
  const { name, code } = error as NodeJS.ErrnoException;
  if (name === 'AbortError' || name === 'TimeoutError' || code === 'ABORT_ERR') return new TimeoutError('the time budget ran out');
  return new NetworkError(code ?? error.message);
}

function headerValue(header: string | string[] | undefined): string | undefined {
  return Array.isArray(header) ? header[0] : header;
}
