/**
 * node:fs for the code before consent, loaded where that code first touches a file. On Node 18
 * (Debian 12's, Ubuntu 24.04's) loading it from outside Node also loads fs/promises and the 30
 * stream and readline modules under it, ~19M instructions, a quarter of `node -e 0`; a run opted
 * out by a flag or a variable touches no file and so does not pay for them. Node 20 and later
 * have node:fs loaded at start-up: there it costs nothing either way.
 */
let loaded: typeof import('node:fs') | undefined;

export function nodeFs(): typeof import('node:fs') {
  loaded ??= require('node:fs') as typeof import('node:fs');
  return loaded;
}
