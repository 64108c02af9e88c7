import Client from 'undici/lib/dispatcher/client.js';
import request from 'undici/lib/api/api-request.js';
import { HttpError, NetworkError, TimeoutError } from './errors.ts';

export interface PostOptions {
  url: URL;
  body: string;
  /** Milliseconds left in the run's budget: connect, headers and body all fit inside it. */
  budgetMs: number;
  userAgent: string;
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** POST one JSON body. Resolves with the status on 2xx; throws HttpError, NetworkError or TimeoutError. */
export async function postJson({ url, body, budgetMs, userAgent }: PostOptions): Promise<number> {
  if (budgetMs <= 0) throw new TimeoutError('no time left in the budget');
  const client = new Client(url.origin, {
    connect: { timeout: budgetMs },
    headersTimeout: budgetMs,
    bodyTimeout: budgetMs,
  });
  try {
    const response = await request.call(client, {
      path: `${url.pathname}${url.search}`,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': userAgent },
      body,
      signal: AbortSignal.timeout(budgetMs),
    });
    await response.body.dump({ limit: 65536 }).catch(() => undefined);
    if (response.statusCode < 200 || response.statusCode > 299) {
      const retryAfter = response.headers['retry-after'];
      throw new HttpError(response.statusCode, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
    }
    return response.statusCode;
  } catch (error) {
    throw classify(error);
  } finally {
    client.destroy().catch(() => undefined);
  }
}

function classify(error: unknown): Error {
  if (error instanceof HttpError) return error;
  const { name, code, message } = error as { name?: string; code?: string; message?: string };
  if (name === 'TimeoutError' || name === 'AbortError' || (code !== undefined && TIMEOUT_CODES.has(code))) {
    return new TimeoutError(message ?? 'timed out');
  }
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return new NetworkError(cause?.code ?? code ?? cause?.message ?? message ?? String(error));
}
