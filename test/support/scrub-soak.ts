import fc from 'fast-check';
import { NUM_RUNS, scrubProperties } from './scrub-properties.ts';

/**
 * Runs the scrubber's property suite many times, seed 1 to N (default 1,000), and prints every
 * failure with its seed, so a failure can be replayed: a property that fails on anything but a
 * real leak shows up here long before it makes `npm test` fail at random.
 *
 *   node --import tsx test/support/scrub-soak.ts [N]
 */

const times = Number(process.argv[2] ?? 1000);
const properties = scrubProperties();
let failures = 0;
const started = performance.now();
for (let seed = 1; seed <= times; seed++) {
  for (const { name, property } of properties) {
    const details = fc.check(property, { numRuns: NUM_RUNS, seed });
    if (details.failed) {
      failures++;
      console.log(`seed ${seed}: ${name}: ${JSON.stringify(details.counterexample)}`);
    }
  }
}
console.log(`${times} runs of ${properties.length} properties x ${NUM_RUNS} cases: ${failures} failures in ${((performance.now() - started) / 1000).toFixed(0)} s`);
process.exitCode = failures === 0 ? 0 : 1;
