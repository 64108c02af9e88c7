import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DOOR, DOOR_OPENER, MAY_IMPORT, partOf } from '../../src/layout.ts';
import { PROJECT_DIR } from '../support/helpers.ts';

/**
 * The opt-out line, kept honest: src/layout.ts says which folder is on which side of consent and
 * what each may import; this checks every import of every file against it. Code before consent
 * reaches code past it only through before-consent/run.ts's dynamic import of door.ts (Next.js
 * spawned its detached flush before checking consent, #97716: a static import is how that
 * starts). Type-only imports keep to it too: what a part names is what it depends on.
 */
const SRC = path.join(PROJECT_DIR, 'src');

function sourceFiles(): string[] {
  return readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && file !== 'layout.ts')
    .map((file) => file.split(path.sep).join('/'));
}

/** Every import of `file`, as a path under src/; `typesToo`: type-only imports as well. */
function imports(file: string, typesToo = false): { target: string; dynamic: boolean }[] {
  const text = readFileSync(path.join(SRC, file), 'utf8');
  const found: { target: string; dynamic: boolean }[] = [];
  for (const match of text.matchAll(/^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+'(\.[^']+)'/gm)) {
    if (typesToo || !match[2]) found.push({ target: match[3], dynamic: false });
  }
  for (const match of text.matchAll(/\bimport\(\s*'(\.[^']+)'\s*\)/g)) found.push({ target: match[1], dynamic: true });
  for (const match of text.matchAll(/\brequire\(\s*'(\.[^']+)'\s*\)/g)) found.push({ target: match[1], dynamic: false });
  return found.map(({ target, dynamic }) => ({ target: path.posix.normalize(path.posix.join(path.posix.dirname(file), target)), dynamic }));
}

test('every file of src/ belongs to one part of the layout', () => {
  assert.deepEqual(sourceFiles().filter((file) => partOf(file) === undefined), []);
});

test('every import, type-only ones included, keeps to the layout: before consent reaches past it only through the dynamic import of door.ts', () => {
  const files = sourceFiles();
  assert.ok(files.filter((file) => partOf(file) === 'before-consent').length >= 10 && files.filter((file) => partOf(file) === 'after-consent').length >= 15, 'both sides were found');
  const crossings = files.flatMap((file) =>
    imports(file, true)
      .filter(({ target }) => target.endsWith('.ts'))
      .filter(({ target, dynamic }) => !(file === DOOR_OPENER && target === DOOR && dynamic))
      .filter(({ target }) => !MAY_IMPORT[partOf(file)!].includes(partOf(target)!))
      .map(({ target, dynamic }) => `${file} (${partOf(file)}) ${dynamic ? 'dynamically ' : ''}imports ${target} (${partOf(target)})`),
  );
  assert.deepEqual(crossings, []);
  assert.ok(imports(DOOR_OPENER).some(({ target, dynamic }) => target === DOOR && dynamic), `${DOOR_OPENER} opens the door`);
});

test('the door is the only module past consent that code before it names', () => {
  const doorUsers = sourceFiles().filter((file) => imports(file).some(({ target }) => target === DOOR));
  assert.deepEqual(doorUsers, [DOOR_OPENER]);
});

test('shared code is Node-free, so the browser module can use it: no node: module, require, Buffer or process', () => {
  const nodeOnly = sourceFiles()
    .filter((file) => partOf(file) === 'shared')
    .flatMap((file) => {
      const text = readFileSync(path.join(SRC, file), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      return [/from\s+'node:/, /\brequire\(/, /\bBuffer\b/, /\bprocess\./].filter((pattern) => pattern.test(text)).map((pattern) => `${file}: ${pattern}`);
    });
  assert.deepEqual(nodeOnly, []);
});

test('no import cycles between modules', () => {
  const files = sourceFiles();
  const edges = new Map(files.map((file) => [file, imports(file).filter(({ dynamic }) => !dynamic).map(({ target }) => target)]));
  const cycles: string[] = [];
  const visit = (file: string, trail: string[]) => {
    if (trail.includes(file)) return void cycles.push([...trail.slice(trail.indexOf(file)), file].join(' -> '));
    if (trail.length > 40) return;
    for (const next of edges.get(file) ?? []) visit(next, [...trail, file]);
  };
  for (const file of files) visit(file, []);
  assert.deepEqual([...new Set(cycles)], []);
});
