/**
 * The main job, end to end: starts the local capture endpoint on 127.0.0.1, reports four events
 * through the compiled file exactly as a daemon's hooks would, prints what the endpoint
 * received, and stops it. Nothing leaves this machine.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeEvent, startEndpoint } from './endpoint.ts';

const BUNDLE = path.resolve(__dirname, '../dist/anonymous-statistics.js');
const EVENTS = [
  ['start'],
  ['fatal', '--process', 'demo-daemon', '--thread', 'MAIN', '--function', 'db_open', '--file', 'database/engine.c', '--line', '212', '--message', 'cannot allocate memory'],
  ['cloud-connect-fail', '--code', 'ECONNREFUSED', '--code', 'HTTP_503', '--message', 'cloud endpoint unreachable'],
  ['stop', '--exit-code', '1'],
];

async function main(): Promise<void> {
  const endpoint = await startEndpoint();
  const dirs = mkdtempSync(path.join(os.tmpdir(), 'anon-stats-demo-'));
  try {
    console.log(`local capture endpoint on ${endpoint.url}\n`);
    for (const args of EVENTS) {
      const command = [BUNDLE, ...args, '--endpoint', endpoint.url, '--product-version', 'v1.44.0', '--config-dir', dirs, '--state-dir', dirs];
      console.log(`$ node dist/anonymous-statistics.js ${args.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ')} --endpoint ${endpoint.url} ...`);
      // Asynchronous, so this process's endpoint can answer while the child waits on it.
      const { stderr } = await promisify(execFile)(process.execPath, command, { env: { ...process.env, DO_NOT_TRACK: '', DISABLE_TELEMETRY: '' } });
      process.stderr.write(stderr);
    }
    const events = endpoint.events();
    console.log(`\nthe endpoint received ${events.length} events in ${endpoint.requests.length} requests:`);
    for (const event of events) console.log(describeEvent(event));
    const [first] = events;
    if (first) console.log(`\nfull payload of the first event:\n${JSON.stringify(first, null, 2)}`);
    if (events.length !== EVENTS.length) {
      console.error(`expected ${EVENTS.length} events; is telemetry opted out on this machine? (anonymous-statistics status)`);
      process.exitCode = 1;
    }
  } finally {
    await endpoint.close();
    rmSync(dirs, { recursive: true, force: true });
  }
}

void main();
