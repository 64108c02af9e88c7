/**
 * Prints the README's "What we collect and why" table rows from the published schema's one
 * source (src/after-consent/collect/properties.ts): `node --import tsx scripts/properties-table.ts`.
 */
import { PROPERTIES } from '../src/after-consent/collect/properties.ts';

const rows = Object.entries(PROPERTIES).map(([name, { type, what, why }]) => `| \`${name}\` | ${what} (${type}) | ${why} |`);
process.stdout.write(['| property | what it is | why |', '|---|---|---|', ...rows].join('\n') + '\n');
