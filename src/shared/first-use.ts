/**
 * What `make` returns, made on the first call and kept: for what costs to build and a run may
 * never need (a Node module on the start-up path, a pattern with Unicode classes).
 */
export function onFirstUse<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}
