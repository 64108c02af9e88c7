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
import { commandName, validateVendorConfig, type VendorConfig } from '../src/before-consent/config/vendor.ts';
import { optionNames } from '../src/before-consent/cli/parse.ts';
import { noticeVersion } from '../src/after-consent/collect/properties.ts';
import { DOOR, DOOR_OPENER, MAY_IMPORT, partOf, type Part } from '../src/layout.ts';

const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_OUTFILE = path.join(projectDir, 'dist/anonymous-statistics.js');
const DASHBOARD_FILE_NAME = 'anonymous-statistics-dashboard.js';
const DEFAULT_VENDOR_FILE = path.join(projectDir, 'vendor.json');
/** Licences a bundled package may have (its package.json "license"); any other fails the build. */
const KNOWN_LICENSES = new Set(['ISC', 'MIT', 'BSD-2-Clause', 'BSD-3-Clause', 'Apache-2.0']);

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
  // The browser module is its own code and the shared, Node-free code (src/layout.ts), nothing else.
  const foreign = Object.keys(metafile.inputs).filter((input) => !MAY_IMPORT.browser.includes(partOf(path.relative(path.join(projectDir, 'src'), path.resolve(input))) as Part));
  if (foreign.length > 0) throw new Error(`${outfile} would bundle ${foreign.join(', ')}: the dashboard module takes only src/dashboard/ and src/shared/`);
}

/**
 * The same `.js` file runs however Node loads it: as CommonJS, or as an ES module where a
 * package.json above it says "type": "module" (a vendor's own Node package), where there is no
 * `require` and one is made with createRequire (the bundle requires only Node's own modules).
 * Neither the body nor this wrapper names `module`, `exports` or `__filename`, nor has an import
 * or export statement, so both parses accept the file. An error that escapes main() prints one
 * line, as main() does: left to Node, it would quote the throwing source line, the whole
 * minified bundle. The body is a parenthesised `function`, which V8 compiles at once: as an
 * arrow it was pre-parsed, then parsed again when called (~3 ms of every run, in 40 interleaved
 * runs of an opted-out start).
 */
function runsAsEitherModuleKind(body: string, command: string): string {
  const internalError = JSON.stringify(`${command}: internal error: `);
  return `"use strict";
((run) => {
  process.on("uncaughtException", (error) => {
    const detail = (process.env.TELEMETRY_DEBUG && error && error.stack) || \`\${error && error.message || error} (set TELEMETRY_DEBUG=1 for details)\`;
    process.stderr.write(${internalError} + detail + "\\n");
    process.exit(1);
  });
  if (typeof require === "function") run(require);
  else import("node:module").then(({ createRequire }) => run(createRequire(process.execPath)));
})((function (require) {
${body}}));
`;
}

const BUNDLE = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node18.19',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  // Inputs in the metafile are then named by their path in the project, as src/layout.ts names them.
  absWorkingDir: projectDir,
  write: false,
  metafile: true,
} as const;

const DOOR_IMPORT = path.posix.relative(path.posix.dirname(DOOR_OPENER), DOOR);

/**
 * Resolves before-consent/run.ts's import of the door: left out of the bundle (`contents`
 * undefined), or as a module of the given contents.
 */
function doorPlugin(contents?: string): Plugin {
  return {
    name: 'door',
    setup(build) {
      build.onResolve({ filter: /door\.ts$/ }, (args) =>
        path.relative(path.join(projectDir, 'src'), args.importer) === DOOR_OPENER && args.path === DOOR_IMPORT
          ? contents === undefined
            ? { path: DOOR, external: true }
            : { path: DOOR, namespace: 'door' }
          : undefined,
      );
      if (contents !== undefined) build.onLoad({ filter: /.*/, namespace: 'door' }, () => ({ contents, loader: 'js', resolveDir: projectDir }));
    },
  };
}

/**
 * The door and the code past it (src/door.ts and all it imports that the code before consent
 * does not), bundled on their own and shipped as a string that node:vm compiles only when the
 * door opens: an opted-out run parses only the code before consent, 41 KB of the 121 KB
 * (docs/performance.md has what that saves, and the bench row that shows it).
 * The modules before consent it imports are handed over from the outer bundle, not bundled
 * again, so there is one copy of each (one Context, one class of each error). A compiled
 * string runs under --disallow-code-generation-from-strings, which stops eval and Function only.
 */
async function pastConsent(vendorJson: string, beforeConsent: ReadonlySet<string>, fileName: string): Promise<{ contents: string; inputs: string[] }> {
  const result = await esbuild({
    ...BUNDLE,
    entryPoints: [path.join(projectDir, 'src', DOOR)],
    define: { NOTICE_VERSION: JSON.stringify(noticeVersion()) },
    plugins: [
      vendorPlugin(vendorJson),
      {
        name: 'hand-over-before-consent',
        setup(build) {
          build.onResolve({ filter: /^\./ }, (args) => {
            const input = path.relative(projectDir, path.resolve(args.resolveDir, args.path)).split(path.sep).join('/');
            return beforeConsent.has(input) ? { path: `handed-over:${input}`, external: true } : undefined;
          });
        },
      },
    ],
  });
  const code = result.outputFiles[0].text;
  const handedOver = [...new Set([...code.matchAll(/require\("handed-over:([^"]+)"\)/g)].map((match) => match[1]))];
  const contents = [
    `const handedOver = { ${handedOver.map((input) => `${JSON.stringify(`handed-over:${input}`)}: require(${JSON.stringify(path.join(projectDir, input))})`).join(', ')} };`,
    'const door = { exports: {} };',
    `const compiled = new (require("node:vm").Script)(${JSON.stringify(`(function (exports, require, module) {${code}})`)}, { filename: ${JSON.stringify(fileName)} });`,
    'compiled.runInThisContext()(door.exports, (id) => (Object.hasOwn(handedOver, id) ? handedOver[id] : require(id)), door);',
    'module.exports = door.exports;',
  ].join('\n');
  return { contents, inputs: Object.keys(result.metafile.inputs) };
}

export async function build({ vendorFile = DEFAULT_VENDOR_FILE, outfile = DEFAULT_OUTFILE }: BuildOptions = {}): Promise<string> {
  const vendor = readVendorFile(vendorFile);
  const vendorJson = JSON.stringify(vendor);
  const toolVersion = JSON.parse(readFileSync(path.join(projectDir, 'package.json'), 'utf8')).version as string;
  const outer = (door: Plugin) =>
    esbuild({
      ...BUNDLE,
      entryPoints: [path.join(projectDir, 'src/main.ts')],
      define: { TOOL_VERSION: JSON.stringify(toolVersion) },
      plugins: [vendorPlugin(vendorJson), door],
    });
  // What the code before consent is, found by bundling it with the door left out.
  const beforeConsent = new Set(Object.keys((await outer(doorPlugin())).metafile.inputs));
  const door = await pastConsent(vendorJson, beforeConsent, `${commandName(vendor)}#door`);
  const result = await outer(doorPlugin(door.contents));
  const outerInputs = Object.keys(result.metafile.inputs).filter((input) => !input.startsWith('door:'));
  const pastTheDoor = outerInputs.filter((input) => ['door', 'after-consent'].includes(partOf(path.relative('src', input)) as Part));
  if (pastTheDoor.length > 0) throw new Error(`the code every run parses would hold ${pastTheDoor.join(', ')}: code before consent reaches code past it only through ${DOOR}`);
  const footer = licenseFooter(bundledPackages([...outerInputs, ...door.inputs]));
  mkdirSync(path.dirname(outfile), { recursive: true });
  writeFileSync(outfile, `${banner(vendor)}\n${runsAsEitherModuleKind(result.outputFiles[0].text, commandName(vendor))}${footer}\n`, { mode: 0o755 });
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
