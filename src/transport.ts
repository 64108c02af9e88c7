import http from 'node:http';
import { HttpError, NetworkError, TimeoutError } from './errors.ts';

export interface PostOptions {
  url: URL;
  body: string;
  /** Milliseconds left in the run's budget: connecting, sending and the answer all fit inside it. */
  budgetMs: number;
  userAgent: string;
}

/** An answer body larger than this is not read further (PostHog answers a few bytes). */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * POST one JSON body with Node's own http/https (TLS certificates verified, no keep-alive so the
 * process ends as soon as the answer is in). Resolves with the status on 2xx; rejects with
 * HttpError, NetworkError or TimeoutError. One abort signal bounds DNS, connect, TLS, headers
 * and body together.
 *
 * Why not undici: measured here (npm run bench), undici's first request adds ~100 ms to a run
 * (its llhttp WebAssembly parser and the memory it maps), node:http ~8 ms; see README.
 */
export function postJson({ url, body, budgetMs, userAgent }: PostOptions): Promise<number> {
  if (budgetMs <= 0) return Promise.reject(new TimeoutError('no time left in the budget'));
  // node:https (and TLS with it) is loaded only for https: endpoints.
  const client: Pick<typeof http, 'request'> = url.protocol === 'https:' ? (require('node:https') as typeof import('node:https')) : http;
  return new Promise((resolve, reject) => {
    const request = client.request(
      url,
      {
        method: 'POST',
        agent: false,
        signal: AbortSignal.timeout(budgetMs),
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': userAgent },
      },
      (response) => {
        let received = 0;
        response.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > MAX_RESPONSE_BYTES) response.destroy();
        });
        response.on('error', (error) => reject(classify(error)));
        response.on('close', () => {
          const status = response.statusCode ?? 0;
          if (status >= 200 && status <= 299) resolve(status);
          else reject(new HttpError(status, headerValue(response.headers['retry-after'])));
        });
      },
    );
    request.on('error', (error) => reject(classify(error)));
    request.end(body);
  });
}

function classify(error: Error): Error {
  const { name, code } = error as NodeJS.ErrnoException;
  if (name === 'AbortError' || name === 'TimeoutError' || code === 'ABORT_ERR') return new TimeoutError('the time budget ran out');
  return new NetworkError(code ?? error.message);
}

function headerValue(header: string | string[] | undefined): string | undefined {
  return Array.isArray(header) ? header[0] : header;
}
