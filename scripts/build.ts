/**
 * Bundles src/ into the one file users run: `npm run build [-- --vendor FILE] [-- --outfile FILE]`.
 * The vendor's JSON (product, endpoint, API key, config and state dirs, the product's own command
 * and opt-out names) replaces vendor.json in the bundle after validation, so a flavour needs no
 * source edit. Beside it goes the dashboard's browser module, the same for every vendor: all it
 * knows comes from the consent document.
 */
import { build as esbuild, type Plugin } from 'esbuild';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { commandName, validateVendorConfig, type VendorConfig } from '../src/config/vendor.ts';
import { optionNames } from '../src/cli/parse.ts';

const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_OUTFILE = path.join(projectDir, 'dist/anonymous-statistics.js');
const DASHBOARD_FILE_NAME = 'anonymous-statistics-dashboard.js';
const DEFAULT_VENDOR_FILE = path.join(projectDir, 'vendor.json');
const BUNDLED_LICENSES = ['semver'];

const COMMON = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node18.19',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
} as const;

export interface BuildOptions {
  vendorFile?: string;
  outfile?: string;
}

function readVendorFile(file: string): VendorConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`${file}: cannot read vendor file (${(error as NodeJS.ErrnoException).code})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message})`);
  }
  return validateVendorConfig(parsed, file, optionNames());
}

/**
 * The file's first lines: what a shell installer needs from the flavour, read with sed and no
 * node (`sed -n 's|^// product: ||p;/^[^#/]/q'`). Validation keeps every value on one line.
 */
export function banner(vendor: VendorConfig): string {
  const optOutEnv = Object.entries(vendor.optOutEnv ?? {}).map(([name, meaning]) => `${name}=${meaning}`);
  return [
    '#!/usr/bin/env node',
    `// product: ${vendor.product}`,
    `// config-dir: ${vendor.configDir}`,
    `// state-dir: ${vendor.stateDir}`,
    `// command: ${commandName(vendor)}`,
    `// opt-out-env: ${optOutEnv.join(' ')}`.trimEnd(),
    `// opt-out-flag: ${vendor.optOutFlag ?? ''}`.trimEnd(),
  ].join('\n');
}

/** Serves the chosen vendor file wherever src/ imports vendor.json. */
function vendorPlugin(vendorJson: string): Plugin {
  return {
    name: 'vendor-config',
    setup(build) {
      build.onResolve({ filter: /(^|\/)vendor\.json$/ }, () => ({ path: 'vendor.json', namespace: 'vendor' }));
      build.onLoad({ filter: /.*/, namespace: 'vendor' }, () => ({ contents: vendorJson, loader: 'json' }));
    },
  };
}

function licenseFooter(): string {
  const notices = BUNDLED_LICENSES.map((name) => {
    const license = readFileSync(path.join(projectDir, 'node_modules', name, 'LICENSE'), 'utf8').trim();
    return `${name}:\n${license}`;
  });
  return `/*\nThis file bundles the following packages under their licenses.\n\n${notices.join('\n\n').replaceAll('*/', '* /')}\n*/`;
}

/** The browser module is written next to the CLI file, whatever that is called. */
export function dashboardOutfile(outfile: string): string {
  return path.join(path.dirname(outfile), DASHBOARD_FILE_NAME);
}

/**
 * An ES module for any browser a dashboard meets (no optional chaining in the output, which
 * 2020's Safari 13 lacks) that imports nothing: the build fails if esbuild's own record of the
 * output shows an import, static or dynamic, so a page never fetches more than this one file.
 */
async function buildDashboard(outfile: string): Promise<void> {
  const { metafile } = await esbuild({
    entryPoints: [path.join(projectDir, 'src/dashboard/index.ts')],
    outfile,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: ['es2017'],
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  });
  const imports = Object.values(metafile.outputs).flatMap((output) => output.imports);
  if (imports.length > 0) throw new Error(`${outfile} would import ${imports.map((i) => i.path).join(', ')}: the dashboard module must import nothing`);
}

export async function build({ vendorFile = DEFAULT_VENDOR_FILE, outfile = DEFAULT_OUTFILE }: BuildOptions = {}): Promise<string> {
  const vendor = readVendorFile(vendorFile);
  const toolVersion = JSON.parse(readFileSync(path.join(projectDir, 'package.json'), 'utf8')).version as string;
  await esbuild({
    ...COMMON,
    entryPoints: [path.join(projectDir, 'src/main.ts')],
    outfile,
    banner: { js: banner(vendor) },
    footer: { js: licenseFooter() },
    define: { TOOL_VERSION: JSON.stringify(toolVersion) },
    plugins: [vendorPlugin(JSON.stringify(vendor))],
  });
  await buildDashboard(dashboardOutfile(outfile));
  return outfile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { vendor: { type: 'string' }, outfile: { type: 'string' } } });
  build({ vendorFile: values.vendor && path.resolve(values.vendor), outfile: values.outfile && path.resolve(values.outfile) }).then(
    (outfile) => console.log(`built ${path.relative(process.cwd(), outfile)} and ${path.relative(process.cwd(), dashboardOutfile(outfile))}`),
    (error: Error) => {
      console.error(`build failed: ${error.message}`);
      process.exitCode = 1;
    },
  );
}
