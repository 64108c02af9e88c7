import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { PROJECT_DIR } from './helpers.ts';

/**
 * The opt-out line, kept honest: code that runs before consent (src/cli, src/consent,
 * src/config, run.ts, main.ts) reaches code past it (collect, deliver, store) only through the
 * one door, a dynamic import of src/reporter.ts. Type-only imports carry no code and are allowed.
 * (Next.js spawned its detached flush before checking consent, #97716: a static import is how
 * that starts.)
 */
const SRC = path.join(PROJECT_DIR, 'src');
const BEFORE_CONSENT = /^(cli|consent|config)\/|^(run|main|errors)\.ts$/;
const DOOR = 'reporter.ts';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'));
}

/** Every import of `file` that brings code along: [specifier, dynamic]. */
function codeImports(file: string): { target: string; dynamic: boolean }[] {
  const text = readFileSync(path.join(SRC, file), 'utf8');
  const found: { target: string; dynamic: boolean }[] = [];
  for (const match of text.matchAll(/^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+'(\.[^']+)'/gm)) {
    if (!match[2]) found.push({ target: match[3], dynamic: false });
  }
  for (const match of text.matchAll(/\bimport\(\s*'(\.[^']+)'\s*\)/g)) found.push({ target: match[1], dynamic: true });
  for (const match of text.matchAll(/\brequire\(\s*'(\.[^']+)'\s*\)/g)) found.push({ target: match[1], dynamic: false });
  return found.map(({ target, dynamic }) => ({ target: path.posix.normalize(path.posix.join(path.posix.dirname(file), target)), dynamic }));
}

test('code before consent imports code past it only through the dynamic import of src/reporter.ts', () => {
  const files = sourceFiles(SRC);
  const before = files.filter((file) => BEFORE_CONSENT.test(file));
  assert.ok(before.length >= 10 && files.length - before.length >= 15, 'both sides were found');
  const crossings = before.flatMap((file) =>
    codeImports(file)
      .filter(({ target }) => !target.startsWith('../') && !BEFORE_CONSENT.test(target))
      .filter(({ target, dynamic }) => !(target === DOOR && dynamic))
      .map(({ target, dynamic }) => `${file} ${dynamic ? 'dynamically ' : ''}imports ${target}`),
  );
  assert.deepEqual(crossings, []);
  assert.ok(codeImports('run.ts').some(({ target, dynamic }) => target === DOOR && dynamic), 'run.ts opens the door');
});

test('the door is the only module past consent that code before it names', () => {
  const doorUsers = sourceFiles(SRC).filter((file) => codeImports(file).some(({ target }) => target === DOOR));
  assert.deepEqual(doorUsers, ['run.ts']);
});
