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

/** The run's budget was spent before a request could start: no word about the receiver. */
export class BudgetSpentError extends Error {
  readonly code = 'E_BUDGET';
  override name = 'BudgetSpentError';
}
