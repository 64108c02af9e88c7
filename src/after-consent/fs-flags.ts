/**
 * Linux's O_PATH (the same value on every architecture Node runs on there; Node does not export
 * it): a descriptor that names a file without opening it for reading, so what a path leads to
 * can be checked (fstat) before anything is read from or done to it. 0 elsewhere.
 */
export const O_PATH = process.platform === 'linux' ? 0o10000000 : 0;
