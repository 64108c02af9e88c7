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
export async function post({ url, body, budgetMs, userAgent, gzip, proxy, headers: extra }: PostOptions): Promise<number> {
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
  try {
    if (!proxy) return await exchange(url.protocol === 'https:' ? httpsModule() : httpModule(), url, { headers, signal, agent: false }, body);
    if (url.protocol !== 'https:') throw new NetworkError(`only https: goes through a proxy, not ${url.protocol}`);
    const opened = await openTunnel(proxy, url, signal);
    tunnel = opened;
    // No agent at all: with one (even `agent: false`) Node opens a connection of its own to the
    // receiver and ignores createConnection, so the request would bypass the tunnel.
    return await exchange(httpsModule(), url, { headers, signal, createConnection: () => secureOver(opened, url) }, body);
  } catch (error) {
    throw classify(error as Error);
  } finally {
    tunnel?.destroy();
  }
}

/**
 * TLS inside the tunnel, verified as a direct connection is: against the receiver's name (SNI
 * and certificate check), with Node's CA store plus NODE_EXTRA_CA_CERTS.
 */
function secureOver(tunnel: Socket, url: URL): Socket {
  const tls = require('node:tls') as typeof import('node:tls');
  const { isIP } = require('node:net') as typeof import('node:net');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return tls.connect({ socket: tunnel, host, servername: isIP(host) ? undefined : host });
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
