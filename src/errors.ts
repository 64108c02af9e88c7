/** A mistake in how we were called: exit 2, one line on stderr, nothing sent or written. */
export class UsageError extends Error {
  readonly code = 'E_USAGE';
  override name = 'UsageError';
}

/** A management command could not do what it was asked: exit 1. */
export class CommandError extends Error {
  readonly code = 'E_COMMAND';
  override name = 'CommandError';
}

/** The receiver answered with a status other than 2xx. */
export class HttpError extends Error {
  readonly code = 'E_HTTP';
  override name = 'HttpError';
  /** `retryAfter` is the receiver's Retry-After header, as sent. */
  constructor(readonly status: number, readonly retryAfter?: string) {
    super(`HTTP ${status}`);
  }
}

/** No answer at all: refused, reset, DNS, TLS. */
export class NetworkError extends Error {
  readonly code = 'E_NETWORK';
  override name = 'NetworkError';
}

/** The run's time budget ran out before the receiver answered. */
export class TimeoutError extends Error {
  readonly code = 'E_TIMEOUT';
  override name = 'TimeoutError';
}
