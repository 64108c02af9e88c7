import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseInvocation } from '../../../../src/before-consent/cli/parse.ts';
import { UsageError } from '../../../../src/before-consent/errors.ts';
import { buildEventProperties } from '../../../../src/before-consent/cli/events.ts';
import { cut, MAX_TEXT_LENGTH } from '../../../../src/shared/scrub.ts';

const usage = (pattern: RegExp) => (error: unknown) => error instanceof UsageError && pattern.test(error.message);

test('finds the command wherever the options stand', () => {
  assert.deepEqual(parseInvocation(['--dry-run', 'stop', '--exit-code', '3']), {
    kind: 'event',
    command: 'stop',
    values: { 'dry-run': true, 'exit-code': '3' },
  });
});

test('repeatable options collect every value', () => {
  const invocation = parseInvocation(['cloud-connect-fail', '--code', 'E1', '--code', 'E2']);
  assert.deepEqual(invocation.kind === 'event' && invocation.values.code, ['E1', 'E2']);
});

test('legacy START, EXIT, FATAL and ACLK_CONN_FAIL map onto the event commands', () => {
  assert.deepEqual(parseInvocation(['START', '-', '-']), { kind: 'event', command: 'start', values: {} });
  assert.deepEqual(parseInvocation(['EXIT', 'OK']), { kind: 'event', command: 'stop', values: { 'exit-code': '0' } });
  assert.deepEqual(parseInvocation(['EXIT', 'ERROR', '-']), { kind: 'event', command: 'stop', values: { 'exit-code': '1' } });
  assert.deepEqual(parseInvocation(['ACLK_CONN_FAIL', 'FAIL', 'connection refused']), {
    kind: 'event',
    command: 'cloud-connect-fail',
    values: { code: ['FAIL'], message: 'connection refused' },
  });
});

test("legacy FATAL splits program:thread and reads netdata's line@file:function/errno data", () => {
  const invocation = parseInvocation(['FATAL', 'netdata:MAIN', '0123@daemon/mai:netdata_main   /12']);
  assert.equal(invocation.kind, 'event');
  const properties = buildEventProperties('fatal', invocation.kind === 'event' ? invocation.values : {});
  assert.deepEqual(properties, {
    fatal_process: 'netdata',
    fatal_thread: 'MAIN',
    fatal_function: 'netdata_main',
    fatal_file: 'daemon/mai',
    fatal_line: 123,
    fatal_message: '0123@daemon/mai:netdata_main   /12',
  });
});

test('rejects unknown commands, unknown options and options of another command', () => {
  assert.throws(() => parseInvocation(['launch']), usage(/unknown command "launch"/));
  assert.throws(() => parseInvocation(['start', '--frobnicate']), usage(/--frobnicate/));
  assert.throws(() => parseInvocation(['start', '--line', '3']), usage(/--line does not apply to "start"/));
  assert.throws(() => parseInvocation([]), usage(/no command/));
  assert.throws(() => parseInvocation(['start', 'extra']), usage(/unexpected argument "extra"/));
  assert.throws(() => parseInvocation(['EXIT', 'MAYBE']), usage(/OK or ERROR/));
  assert.throws(() => parseInvocation(['fatal', '--line']), usage(/--line/));
});

test('builders reject malformed values with a message naming the option', () => {
  assert.throws(() => buildEventProperties('stop', { 'exit-code': 'x' }), usage(/--exit-code .*"x"/));
  assert.throws(() => buildEventProperties('fatal', { process: 'p', thread: 't', line: 'abc' }), usage(/--line .*"abc"/));
  assert.throws(() => buildEventProperties('fatal', { process: 'p', thread: 't', line: '-1' }), usage(/--line/));
  assert.throws(() => buildEventProperties('fatal', { process: 'p' }), usage(/fatal needs --thread/));
  assert.throws(() => buildEventProperties('install', { result: 'maybe' }), usage(/--result/));
  assert.throws(() => buildEventProperties('cloud-unavailable', { reason: '  ' }), usage(/--reason must not be empty/));
});

test('stop defaults to exit code 0 and keeps numbers as numbers', () => {
  assert.deepEqual(buildEventProperties('stop', {}), { exit_code: 0 });
  assert.deepEqual(buildEventProperties('stop', { 'exit-code': '137' }), { exit_code: 137 });
});

test('over-long text is cut to the documented length on a code point boundary', () => {
  const long = `${'😀'.repeat(MAX_TEXT_LENGTH - 1)}${'x'.repeat(120 * 1024)}`;
  const cutText = cut(long);
  assert.equal(Array.from(cutText).length, MAX_TEXT_LENGTH);
  assert.ok(cutText.endsWith('😀x'));
});

test('a string option takes the next argument as its value, even one that begins with "-"', () => {
  const fatal = parseInvocation(['fatal', '--process', 'd', '--thread', 'MAIN', '--message', '-12 ENOMEM', '--line', '7']);
  assert.deepEqual(fatal.kind === 'event' && fatal.values, { process: 'd', thread: 'MAIN', message: '-12 ENOMEM', line: '7' });
  const codes = parseInvocation(['cloud-connect-fail', '--code', '-1', '--code=--x']);
  assert.deepEqual(codes.kind === 'event' && codes.values.code, ['-1', '--x']);
  assert.deepEqual(parseInvocation(['ACLK_CONN_FAIL', '-1', '-connection refused']), { kind: 'event', command: 'cloud-connect-fail', values: { code: ['-1'], message: '-connection refused' } });
  assert.throws(() => parseInvocation(['stop', '--dry-run=yes']), usage(/--dry-run takes no value/));
  assert.throws(() => parseInvocation(['start', '-x']), usage(/unknown option "-x"/));
});
