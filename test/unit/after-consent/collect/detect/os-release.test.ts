import assert from 'node:assert/strict';
import fc from 'fast-check';
import { test } from 'node:test';
import { parseOsRelease } from '../../../../../src/after-consent/collect/detect/os-release.ts';

test('reads unquoted, double-quoted and single-quoted values', () => {
  assert.deepEqual(parseOsRelease('ID=debian\nNAME="Debian GNU/Linux"\nVERSION=\'12 (bookworm)\'\n'), {
    ID: 'debian',
    NAME: 'Debian GNU/Linux',
    VERSION: '12 (bookworm)',
  });
});

test('applies shell escapes: backslash in double quotes escapes only $ ` " \\', () => {
  const record = parseOsRelease('A="say \\"hi\\" \\$HOME \\`x\\` \\\\ \\n"\nB=un\\ quoted\nC=\'no \\escape\'\n');
  assert.equal(record.A, 'say "hi" $HOME `x` \\ \\n');
  assert.equal(record.B, 'un quoted');
  assert.equal(record.C, 'no \\escape');
});

test('never evaluates: command substitutions and variables stay literal', () => {
  const record = parseOsRelease('NAME="$(reboot)"\nID=`id`\nVERSION=${HOME}\n');
  assert.equal(record.NAME, '$(reboot)');
  assert.equal(record.ID, '`id`');
  assert.equal(record.VERSION, '${HOME}');
});

test('skips comments, blank lines and lines that are not assignments', () => {
  const record = parseOsRelease('# comment\n\n  # indented comment\nnot an assignment\nID=arch # trailing comment\nexport X=1\n');
  assert.deepEqual(record, { ID: 'arch' });
});

test('handles CRLF line endings without keeping the carriage return', () => {
  assert.deepEqual(parseOsRelease('ID="rhel"\r\nVERSION_ID=9.3\r\n'), { ID: 'rhel', VERSION_ID: '9.3' });
});

test('keeps case, empty values and adjacent quoted parts as a shell would', () => {
  assert.deepEqual(parseOsRelease('NAME=openSUSE\nID_LIKE=\nVERSION="1"\'2\'3\n'), { NAME: 'openSUSE', ID_LIKE: '', VERSION: '123' });
});

test('a later assignment of the same key wins', () => {
  assert.equal(parseOsRelease('ID=a\nID=b\n').ID, 'b');
});

test('an unterminated quote takes the rest of the file instead of failing', () => {
  assert.equal(parseOsRelease('ID="broken\nVERSION=1\n').ID, 'broken\nVERSION=1\n');
});

test('keeps non-ASCII text intact', () => {
  assert.equal(parseOsRelease('NAME="银河麒麟"\n').NAME, '银河麒麟');
});

/**
 * A value as POSIX sh reads it, written as one pattern of its parts instead of the parser's
 * loop: a backslash and the character it escapes (a line break: nothing), a single-quoted part,
 * a double-quoted part (where a backslash escapes only $ ` " \\ and a line break), a plain
 * character. Quotes left open run to the end.
 */
const PART = /\\([^]?)|'([^']*)'?|"((?:\\[^]?|[^"\\])*)"?|([^ \t\n\\'"])/y;
function valueAsShellReadsIt(text: string): string {
  let value = '';
  PART.lastIndex = 0;
  for (let part = PART.exec(text); part !== null; part = PART.exec(text)) {
    const [, escaped, single, double, plain] = part;
    if (escaped !== undefined) value += escaped === '\n' ? '' : escaped;
    else if (single !== undefined) value += single;
    else if (double !== undefined) value += double.replace(/\\([$`"\\\n])/g, (_, char: string) => (char === '\n' ? '' : char));
    else value += plain;
  }
  return value;
}

test('reads any value as the shell does: quotes, escapes and line breaks in any order', () => {
  // No Z among the pieces: nothing in a value can assign Z again.
  const piece = fc.constantFrom('A', 'ID', '_x1', '=', '"', "'", '\\', '\n', ' ', '\t', '#', '$', '`', 'é', '银', 'word', '1.2');
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 60 }), (pieces) => {
      const value = pieces.join('');
      assert.equal(parseOsRelease(`Z=${value}`).Z, valueAsShellReadsIt(value));
    }),
    { numRuns: 5000 },
  );
});

test('a value of a megabyte, quoted or not, is read whole', () => {
  const long = 'x'.repeat(1 << 20);
  assert.equal(parseOsRelease(`NAME="${long}"\nID=${long}\n`).NAME, long);
  assert.equal(parseOsRelease(`ID=${long}\\ y\n`).ID, `${long} y`);
});
