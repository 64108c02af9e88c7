/**
 * The opt-out line, stated once: which part of src/ runs on which side of consent, and what each
 * part may import. scripts/build.ts and test/unit/layout.test.ts both read it; nothing here is
 * bundled.
 *
 *   main.ts           the entry: builds the Context, runs the command line
 *   before-consent/   the command line, every opt-out, the settings: runs before anything is read
 *   door.ts           the one door, loaded by before-consent/run.ts only once consent is given
 *   after-consent/    collect, deliver, store: what the door runs
 *   shared/           pure, Node-free code both the CLI and the browser module use
 *   dashboard/        the browser module: shared/ and itself, nothing else
 */
export type Part = 'entry' | 'before-consent' | 'door' | 'after-consent' | 'shared' | 'browser';

const PARTS: readonly [prefix: string, part: Part][] = [
  ['main.ts', 'entry'],
  ['before-consent/', 'before-consent'],
  ['door.ts', 'door'],
  ['after-consent/', 'after-consent'],
  ['shared/', 'shared'],
  ['dashboard/', 'browser'],
];

/**
 * The parts whose code each part may import (type-only imports carry no code and are free).
 * Before consent reaches the door only through before-consent/run.ts's dynamic import; what is
 * decided before consent (settings, the Context) flows down into the code past it, never back.
 */
export const MAY_IMPORT: Readonly<Record<Part, readonly Part[]>> = {
  entry: ['before-consent', 'shared'],
  'before-consent': ['before-consent', 'shared'],
  door: ['before-consent', 'after-consent', 'shared'],
  'after-consent': ['before-consent', 'after-consent', 'shared'],
  shared: ['shared'],
  browser: ['browser', 'shared'],
};

/** The one dynamic import that opens the door: from this file, of the door. */
export const DOOR_OPENER = 'before-consent/run.ts';
export const DOOR = 'door.ts';

/** The part a file belongs to, by its path under src/ (forward slashes); undefined outside every part. */
export function partOf(file: string): Part | undefined {
  return PARTS.find(([prefix]) => (prefix.endsWith('/') ? file.startsWith(prefix) : file === prefix))?.[1];
}
