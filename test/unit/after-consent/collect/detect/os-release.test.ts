import assert from 'node:assert/strict';
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
