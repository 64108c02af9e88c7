/**
 * Bundles src/ into the one file users run: `npm run build [-- --vendor FILE] [-- --outfile FILE]`.
 * The vendor's JSON (product, endpoint, API key, config and state dirs, the product's own command
 * and opt-out names) replaces vendor.json in the bundle after validation, so a flavour needs no
 * source edit. Beside it goes the dashboard's browser module, the same for every vendor: all it
 * knows comes from the consent document.
 */
import { build as esbuild, type Plugin } from 'esbuild';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { commandName, validateVendorConfig, type VendorConfig } from '../src/config/vendor.ts';
import { optionNames } from '../src/cli/parse.ts';

const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_OUTFILE = path.join(projectDir, 'dist/anonymous-statistics.js');
const DASHBOARD_FILE_NAME = 'anonymous-statistics-dashboard.js';
const DEFAULT_VENDOR_FILE = path.join(projectDir, 'vendor.json');
/** Where the code that runs before consent lives: the reporter shares these modules instead of bundling them again. */
const BEFORE_CONSENT = /^src\/(cli|consent|config)\/|^src\/(errors|run|main)\.ts$|^vendor\.json$/;
/** Licences a bundled package may have (its package.json "license"); any other fails the build. */
const KNOWN_LICENSES = new Set(['ISC', 'MIT', 'BSD-2-Clause', 'BSD-3-Clause', 'Apache-2.0']);

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

interface BundledPackage {
  name: string;
  license: string;
  text: string;
}

/** The packages a bundle holds, read from esbuild's metafile, each with its licence text. */
function bundledPackages(inputs: readonly string[]): BundledPackage[] {
  const names = new Set(inputs.map((input) => /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input)?.[1]).filter((name): name is string => name !== undefined));
  return [...names].sort().map((name) => {
    const dir = path.join(projectDir, 'node_modules', name);
    const license = String(JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).license ?? 'none');
    if (!KNOWN_LICENSES.has(license)) throw new Error(`bundled package ${name} has licence "${license}", not one of ${[...KNOWN_LICENSES].join(', ')}`);
    const file = readdirSync(dir).find((entry) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(entry));
    if (file === undefined) throw new Error(`bundled package ${name} ships no licence file`);
    return { name, license, text: readFileSync(path.join(dir, file), 'utf8').trim() };
  });
}

function licenseFooter(packages: readonly BundledPackage[]): string {
  const notices = packages.map(({ name, license, text }) => `${name} (${license}):\n${text}`);
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

/**
 * The code past consent (src/reporter.ts and all it imports), bundled on its own and shipped as a
 * string that node:vm compiles, with a file name of its own for stack traces, only when run.ts
 * loads it: an opted-out run compiles only the code before consent. Modules from before consent
 * that it imports are not bundled again: they are handed over from the outer bundle.
 */
async function reporterPlugin(vendorJson: string): Promise<{ plugin: Plugin; inputs: string[] }> {
  const result = await esbuild({
    ...COMMON,
    entryPoints: [path.join(projectDir, 'src/reporter.ts')],
    write: false,
    metafile: true,
    plugins: [
      vendorPlugin(vendorJson),
      {
        name: 'share-before-consent',
        setup(build) {
          build.onResolve({ filter: /^\./ }, (args) => {
            const target = path.relative(projectDir, path.resolve(args.resolveDir, args.path));
            return BEFORE_CONSENT.test(target) ? { path: `before-consent:${target}`, external: true } : undefined;
          });
        },
      },
    ],
  });
  const code = result.outputFiles[0].text;
  const shared = [...new Set([...code.matchAll(/require\("before-consent:([^"]+)"\)/g)].map((m) => m[1]))];
  const contents = [
    "const vm = require('node:vm');",
    `const shared = { ${shared.map((file) => `${JSON.stringify(`before-consent:${file}`)}: require(${JSON.stringify(path.join(projectDir, file))})`).join(', ')} };`,
    `const compiled = vm.compileFunction(${JSON.stringify(code)}, ['exports', 'require', 'module'], { filename: __filename + '#reporter' });`,
    'const reporter = { exports: {} };',
    'compiled(reporter.exports, (id) => (Object.hasOwn(shared, id) ? shared[id] : require(id)), reporter);',
    'module.exports = reporter.exports;',
  ].join('\n');
  return {
    inputs: Object.keys(result.metafile.inputs),
    plugin: {
      name: 'reporter-compiled-on-use',
      setup(build) {
        build.onResolve({ filter: /^\.\/reporter\.ts$/ }, () => ({ path: 'reporter', namespace: 'reporter' }));
        build.onLoad({ filter: /.*/, namespace: 'reporter' }, () => ({ contents, loader: 'js', resolveDir: path.join(projectDir, 'src') }));
      },
    },
  };
}

export async function build({ vendorFile = DEFAULT_VENDOR_FILE, outfile = DEFAULT_OUTFILE }: BuildOptions = {}): Promise<string> {
  const vendor = readVendorFile(vendorFile);
  const toolVersion = JSON.parse(readFileSync(path.join(projectDir, 'package.json'), 'utf8')).version as string;
  const reporter = await reporterPlugin(JSON.stringify(vendor));
  const outer = await esbuild({
    ...COMMON,
    entryPoints: [path.join(projectDir, 'src/main.ts')],
    write: false,
    metafile: true,
    define: { TOOL_VERSION: JSON.stringify(toolVersion) },
    plugins: [vendorPlugin(JSON.stringify(vendor)), reporter.plugin],
  });
  const outerInputs = Object.keys(outer.metafile.inputs).filter((input) => !input.startsWith('reporter:'));
  const twice = outerInputs.filter((input) => reporter.inputs.includes(input));
  if (twice.length > 0) throw new Error(`bundled twice, before and past consent: ${twice.join(', ')} (code before consent may reach code past it only through src/reporter.ts)`);
  const footer = licenseFooter(bundledPackages([...outerInputs, ...reporter.inputs]));
  mkdirSync(path.dirname(outfile), { recursive: true });
  writeFileSync(outfile, `${banner(vendor)}\n${outer.outputFiles[0].text}${footer}\n`, { mode: 0o755 });
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
