/**
 * Fetches the Node.js builds the compiled file must run on (npm serves them as packages:
 * node-<platform>-<arch>@<version>) into a cache outside the checkout, once per machine, so
 * repeated CI runs on the same machine reuse them. scripts/test-node-versions.ts runs the
 * built file's end-to-end tests under each of them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** 18.19 is what Debian 12 and Ubuntu 24.04 ship; the others are the current LTS lines. */
export const NODE_VERSIONS = ['18.19.0', '20.20.2', '22.23.3', '24.21.0'];

const CACHE = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'anonymous-statistics', 'node');

export function nodeBinary(version: string): string {
  return path.join(CACHE, version, 'node');
}

export function fetchNode(version: string): void {
  const target = nodeBinary(version);
  if (existsSync(target)) return;
  const work = mkdtempSync(path.join(os.tmpdir(), 'node-fetch-'));
  try {
    const spec = `node-${process.platform}-${process.arch}@${version}`;
    execFileSync('npm', ['pack', spec, '--silent'], { cwd: work, stdio: ['ignore', 'ignore', 'inherit'] });
    const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack ${spec} produced no tarball`);
    execFileSync('tar', ['-xzf', tarball, 'package/bin/node'], { cwd: work });
    mkdirSync(path.dirname(target), { recursive: true });
    renameSync(path.join(work, 'package/bin/node'), target);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (require.main === module) {
  for (const version of NODE_VERSIONS) {
    fetchNode(version);
    console.log(`node ${version}: ${execFileSync(nodeBinary(version), ['--version']).toString().trim()} at ${path.relative(process.cwd(), nodeBinary(version))}`);
  }
}
