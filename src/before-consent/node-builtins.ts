import { onFirstUse } from '../shared/first-use.ts';

/**
 * node:fs and node:os for the code before consent, loaded where that code first touches a file
 * or asks the system. On Node 18 (Debian 12's, Ubuntu 24.04's) loading node:fs from outside Node
 * also loads fs/promises and the 30 stream and readline modules under it, ~19M instructions, a
 * quarter of `node -e 0`; node:os costs ~0.8M on every Node. A run opted out by a flag or a
 * variable touches no file and so pays for neither.
 */
export const nodeFs = onFirstUse(() => require('node:fs') as typeof import('node:fs'));
export const nodeOs = onFirstUse(() => require('node:os') as typeof import('node:os'));
