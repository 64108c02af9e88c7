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
